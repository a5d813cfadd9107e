using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace SecureChannels.Client.Hosting;

/// <summary>
/// Runs an agent in a .NET host:
/// <code>
/// builder.Services.AddSecureChannelsClient(builder.Configuration.GetSection(SecureChannelsClientOptions.Section), o =>
///     {
///         o.Identity = identity;
///         o.Anchors = anchors;
///         o.Credentials = [credential];
///     })
///     .AddChannelHandler&lt;BillingHandler&gt;();
/// </code>
/// </summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Adds an <see cref="AgentClient"/> singleton built from <see cref="SecureChannelsClientOptions"/> (set by
    /// <paramref name="configure"/>), with the host's <see cref="ILoggerFactory"/>, <see cref="IMeterFactory"/> and
    /// <see cref="TimeProvider"/> (<see cref="TimeProvider.System"/> unless one is registered). The options are
    /// validated when the host starts (an <see cref="OptionsValidationException"/> names what is wrong); the client's
    /// hops start with the host (its start waits until each relay was tried once, and fails, failing the host's start,
    /// when none of them could be joined: a misconfigured agent says so at once), after the enrollment ticket is
    /// redeemed when one is configured; with an <see cref="SecureChannelsClientOptions.Authority"/>, the agent keeps
    /// in step with it (<see cref="AgentClient.KeepUpWithAuthorityAsync"/>) while the host runs; and the client is disposed when
    /// the host stops. Dispose the service provider asynchronously (a host does): the client is only
    /// <see cref="IAsyncDisposable"/>.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configure">Sets the options, at least <see cref="SecureChannelsClientOptions.Identity"/> and <see cref="SecureChannelsClientOptions.Anchors"/>.</param>
    /// <returns>A builder to add a channel handler with.</returns>
    public static ISecureChannelsClientBuilder AddSecureChannelsClient(this IServiceCollection services, Action<SecureChannelsClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddCore(services, configuration: null, configure);
    }

    /// <summary>
    /// Like <see cref="AddSecureChannelsClient(IServiceCollection, Action{SecureChannelsClientOptions}?)"/>, with the
    /// options' text bound from <paramref name="configuration"/> (by convention the
    /// <see cref="SecureChannelsClientOptions.Section"/> section) first, then <paramref name="configure"/> setting
    /// what configuration cannot carry: the identity, trust anchors, credentials and revocations.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configuration">The section to bind, such as <c>builder.Configuration.GetSection("SecureChannels:Client")</c>.</param>
    /// <param name="configure">Sets the code-only options.</param>
    /// <returns>A builder to add a channel handler with.</returns>
    public static ISecureChannelsClientBuilder AddSecureChannelsClient(this IServiceCollection services, IConfiguration configuration, Action<SecureChannelsClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return AddCore(services, configuration, configure);
    }

    /// <summary>
    /// Serves every incoming channel with a <typeparamref name="THandler"/> (scoped: one per channel, in a DI scope of
    /// its own), at most <see cref="SecureChannelsClientOptions.MaxConcurrentChannels"/> at once (the others wait in
    /// the client's bounded queue, not yet accepted). The channel is closed gracefully and disposed when the handler
    /// returns, disposed at once when it throws, and a failure is logged with the peer's identifier and the
    /// exception's type (never its message, which may quote a payload). When the host stops, the handlers are
    /// cancelled and awaited. One handler per agent: every channel comes from the same queue.
    /// </summary>
    /// <typeparam name="THandler">The handler; registered as scoped unless already registered.</typeparam>
    /// <param name="builder">The builder from <c>AddSecureChannelsClient</c>.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="InvalidOperationException">Another handler type was added already.</exception>
    public static ISecureChannelsClientBuilder AddChannelHandler<THandler>(this ISecureChannelsClientBuilder builder)
        where THandler : class, IAgentChannelHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var other = services.FirstOrDefault(static d =>
            d.ServiceType == typeof(IHostedService)
            && d.ImplementationType is { IsGenericType: true } type
            && type.GetGenericTypeDefinition() == typeof(AgentChannelHandlerService<>)
            && type != typeof(AgentChannelHandlerService<THandler>));
        if (other is not null)
        {
            throw new InvalidOperationException($"A channel handler ({other.ImplementationType!.GenericTypeArguments[0].Name}) was added already; an agent accepts its channels from one queue, so it has one handler.");
        }

        services.TryAddScoped<THandler>();
        services.AddHostedService<AgentChannelHandlerService<THandler>>();
        return builder;
    }

    private static SecureChannelsClientBuilder AddCore(IServiceCollection services, IConfiguration? configuration, Action<SecureChannelsClientOptions>? configure)
    {
        var options = services.AddOptions<SecureChannelsClientOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration);
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        var prefix = configuration is IConfigurationSection section ? section.Path : SecureChannelsClientOptions.Section;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SecureChannelsClientOptions>>(new SecureChannelsClientOptionsValidator(prefix)));
        services.TryAddSingleton(static sp => new AgentClient(sp.GetRequiredService<IOptions<SecureChannelsClientOptions>>().Value.ToAgentClientOptions(
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetService<TimeProvider>() ?? TimeProvider.System,
            sp.GetService<IMeterFactory>())));

        // Registered before any channel handler, so it starts first and stops last: the handlers end before the client.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, AgentClientHostedService>());
        return new SecureChannelsClientBuilder(services);
    }
}
