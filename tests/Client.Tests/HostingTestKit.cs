using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SecureChannels.Client.Hosting;

namespace SecureChannels.Client.Tests;

/// <summary>Builds hosts running an agent through <see cref="ServiceCollectionExtensions.AddSecureChannelsClient(IServiceCollection, IConfiguration, Action{SecureChannelsClientOptions}?)"/>.</summary>
internal static class HostingTestKit
{
    public const string Section = SecureChannelsClientOptions.Section;

    /// <summary>
    /// A host (no default sources or providers: only what the test gives) with the agent's text options bound from
    /// <paramref name="configuration"/>, the code-only ones from <paramref name="configure"/>, and the kit's clock.
    /// </summary>
    public static IHost Build(
        ClientTestKit kit,
        IDictionary<string, string?> configuration,
        Action<SecureChannelsClientOptions>? configure,
        Action<ISecureChannelsClientBuilder>? handlers = null,
        Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(configuration);
        builder.Services.AddSingleton<TimeProvider>(kit.Time);
        services?.Invoke(builder.Services);
        var client = builder.Services.AddSecureChannelsClient(builder.Configuration.GetSection(Section), configure);
        handlers?.Invoke(client);
        return builder.Build();
    }

    /// <summary>
    /// A host running a worker agent (principal <c>user:worker</c>) on <paramref name="relay"/> under
    /// <paramref name="policy"/>, served by <typeparamref name="THandler"/>; not started.
    /// </summary>
    public static async Task<(IHost Host, Protocol.Identity.AgentIdentity Identity)> BuildWorkerAsync<THandler>(
        ClientTestKit kit, RelayEndpoint relay, string policy, Action<SecureChannelsClientOptions>? configure = null, Action<IServiceCollection>? services = null)
        where THandler : class, IAgentChannelHandler
    {
        var identity = await kit.CreateIdentityAsync();
        var credential = await kit.IssueAsync(identity, "user:worker", "role=worker");
        var host = Build(
            kit,
            Configuration(relay, policy),
            o =>
            {
                o.Identity = identity;
                o.Anchors = kit.Anchors;
                o.Credentials = [credential];
                configure?.Invoke(o);
            },
            client => client.AddChannelHandler<THandler>(),
            services);
        return (host, identity);
    }

    /// <summary>Configuration text for one relay, the names and the policy.</summary>
    public static Dictionary<string, string?> Configuration(RelayEndpoint relay, string policy, params string[] names)
    {
        var configuration = new Dictionary<string, string?>
        {
            [$"{Section}:Relays:0:EndPoint"] = relay.EndPoint.ToString(),
            [$"{Section}:Relays:0:Identifier"] = relay.Identifier.ToString(),
            [$"{Section}:Policy"] = policy,
        };
        for (var i = 0; i < names.Length; i++)
        {
            configuration[$"{Section}:Names:{i}"] = names[i];
        }

        return configuration;
    }

    /// <summary>Sends a fresh payload on <paramref name="channel"/> and expects it back.</summary>
    public static async Task AssertEchoesAsync(AgentChannel channel)
    {
        var payload = Guid.NewGuid().ToByteArray();
        await channel.SendAsync(payload).AsTask().WaitAsync(ClientTestKit.Guard);
        using var echoed = await channel.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
        Assert.NotNull(echoed);
        Assert.Equal(payload, echoed.Payload.ToArray());
    }

    public static async Task DisposeHostAsync(IHost host)
    {
        // The client is only IAsyncDisposable, so the host's services must be disposed asynchronously.
        await ((IAsyncDisposable)host).DisposeAsync();
    }
}

/// <summary>Echoes every message back until the peer closes.</summary>
internal sealed class EchoHandler : IAgentChannelHandler
{
    public async Task HandleAsync(AgentChannel channel, CancellationToken cancellationToken)
    {
        while (await channel.ReceiveAsync(cancellationToken) is { } message)
        {
            using (message)
            {
                await channel.SendAsync(message.Payload, cancellationToken);
            }
        }
    }
}

/// <summary>What <see cref="GatedHandler"/>s report, and the gates the test opens.</summary>
internal sealed class HandlerProbe
{
    private int _running;
    private int _maxRunning;
    private int _cancelled;

    /// <summary>Every handler that entered, with the gate that lets it return.</summary>
    public Channel<TaskCompletionSource> Entered { get; } = Channel.CreateUnbounded<TaskCompletionSource>();

    public int MaxRunning => Volatile.Read(ref _maxRunning);

    public int Cancelled => Volatile.Read(ref _cancelled);

    public void Enter()
    {
        var running = Interlocked.Increment(ref _running);
        int max;
        while (running > (max = Volatile.Read(ref _maxRunning)) && Interlocked.CompareExchange(ref _maxRunning, running, max) != max)
        {
        }
    }

    public void Leave(bool cancelled)
    {
        Interlocked.Decrement(ref _running);
        if (cancelled)
        {
            Interlocked.Increment(ref _cancelled);
        }
    }
}

/// <summary>Echoes until its gate opens (or the host stops); reports to the <see cref="HandlerProbe"/>.</summary>
internal sealed class GatedHandler(HandlerProbe probe) : IAgentChannelHandler
{
    public async Task HandleAsync(AgentChannel channel, CancellationToken cancellationToken)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        probe.Enter();
        var cancelled = false;
        try
        {
            probe.Entered.Writer.TryWrite(gate);
            using var echoing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var echo = EchoAsync(channel, echoing.Token);
            try
            {
                await gate.Task.WaitAsync(cancellationToken);
            }
            finally
            {
                await echoing.CancelAsync();
                await echo;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            cancelled = true;
            throw;
        }
        finally
        {
            probe.Leave(cancelled);
        }
    }

    private static async Task EchoAsync(AgentChannel channel, CancellationToken cancellationToken)
    {
        try
        {
            while (await channel.ReceiveAsync(cancellationToken) is { } message)
            {
                using (message)
                {
                    await channel.SendAsync(message.Payload, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}

/// <summary>Reads one message, then throws with a message that must never reach the logs.</summary>
internal sealed class FailingHandler : IAgentChannelHandler
{
    public const string Secret = "payload-that-must-not-be-logged";

    public async Task HandleAsync(AgentChannel channel, CancellationToken cancellationToken)
    {
        using var message = await channel.ReceiveAsync(cancellationToken);
        throw new InvalidDataException(Secret);
    }
}

/// <summary>Answers one message with its bytes reversed and returns at once: the answer must still arrive.</summary>
internal sealed class OneShotHandler : IAgentChannelHandler
{
    public async Task HandleAsync(AgentChannel channel, CancellationToken cancellationToken)
    {
        using var message = await channel.ReceiveAsync(cancellationToken);
        var reply = message!.Payload.ToArray();
        Array.Reverse(reply);
        await channel.SendAsync(reply, cancellationToken);
    }
}

/// <summary>Keeps every log entry, formatted, with its category and exception.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message, Exception? Exception)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            provider.Entries.Enqueue((category, logLevel, formatter(state, exception), exception));
    }
}
