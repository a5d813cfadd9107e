using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Publication;
using SecureChannels.Authority.Storage;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Authority.Hosting;

/// <summary>
/// Builds an authority as a .NET host: Kestrel with a ConnectionHandler on the channel endpoint, /healthz and
/// /metrics on a separate HTTP endpoint, options bound from the "Authority" section and validated at start,
/// the store opened (and its schema created) before the first connection, and a watcher for publications
/// made elsewhere.
/// </summary>
public static class AuthorityApplication
{
    /// <summary>
    /// Creates the authority's application. <paramref name="configure"/> may add configuration sources or
    /// replace services (a <see cref="TimeProvider"/>, an <see cref="IAuthorityStore"/>, logging) before it is built.
    /// </summary>
    public static WebApplication Build(string[] args, AgentIdentity identity, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var builder = WebApplication.CreateSlimBuilder(args);
        configure?.Invoke(builder);
        AddAuthority(builder.Services, builder.Configuration, identity);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<AuthorityOptions>();
            var server = kestrel.ApplicationServices.GetRequiredService<AuthorityServer>();
            kestrel.AddServerHeader = false;
            kestrel.Listen(options.GetEndPoint(), listen =>
            {
                listen.UseConnectionHandler<AuthorityConnectionHandler>();
                server.Listener = listen;
            });
            if (!string.IsNullOrEmpty(options.MetricsEndpoint))
            {
                kestrel.Listen(IPEndPoint.Parse(options.MetricsEndpoint), listen => server.MetricsListener = listen);
            }
        });

        var app = builder.Build();
        app.MapGet("/healthz", (IHostApplicationLifetime lifetime) => lifetime.ApplicationStopping.IsCancellationRequested ? Results.Text("stopping", statusCode: 503) : Results.Text("ok"));
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }

    /// <summary>Opens the store the options name.</summary>
    public static IAuthorityStore OpenStore(AuthorityOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Store == AuthorityStoreKind.Postgres
            ? new PostgresAuthorityStore(options.PostgresConnectionString!)
            : new SqliteAuthorityStore(options.SqlitePath);
    }

    private static void AddAuthority(IServiceCollection services, ConfigurationManager configuration, AgentIdentity identity)
    {
        services.AddOptions<AuthorityOptions>().Bind(configuration.GetSection(AuthorityOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<AuthorityOptions>, AuthorityOptionsValidator>();
        services.AddSingleton(static sp => sp.GetRequiredService<IOptions<AuthorityOptions>>().Value);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(static sp => OpenStore(sp.GetRequiredService<AuthorityOptions>()));
        services.AddSingleton(static sp => new AuthorityMetrics());
        services.AddSingleton(sp => new AuthorityService(
            identity,
            sp.GetRequiredService<IAuthorityStore>(),
            sp.GetRequiredService<AuthorityOptions>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<AuthorityMetrics>(),
            sp.GetRequiredService<ILogger<AuthorityService>>()));
        services.AddSingleton<PublicationHub>();
        services.AddSingleton<AuthorityConnectionHandler>();
        services.AddSingleton(static sp => new AuthorityServer(sp.GetRequiredService<AuthorityService>(), sp.GetRequiredService<PublicationHub>(), sp.GetRequiredService<AuthorityMetrics>()));

        // The store is opened and loaded before Kestrel accepts: hosted services start in order, the server last.
        services.AddHostedService<StoreInitializer>();
        services.AddHostedService<StoreWatcher>();
        services.AddOpenTelemetry().WithMetrics(static metrics => metrics
            .AddMeter(AuthorityMetrics.MeterName)
            .AddPrometheusExporter(static o => o.ScrapeResponseCacheDurationMilliseconds = 0));
    }

    private sealed class StoreInitializer(AuthorityService service) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => service.InitializeAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
