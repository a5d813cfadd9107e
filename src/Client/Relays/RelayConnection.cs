using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Resilience;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Client.Relays;

/// <summary>
/// The agent's hop to one relay, kept up: connect, authenticate the relay as its pinned identity, HELLO (which
/// registers the agent's addresses again), hand every incoming circuit to the client, and when the hop is lost,
/// reconnect after a jittered exponential back-off. Channels over a lost hop end with their reason; they are never
/// silently re-opened.
/// </summary>
internal sealed partial class RelayConnection(RelayEndpoint relay, AgentClient client, ILogger logger)
{
    private readonly TaskCompletionSource<Exception?> _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<RelayLink> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _connections;

    public RelayEndpoint Relay { get; } = relay;

    /// <summary>How many times a hop was established (the first, then each reconnect).</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>The link while the hop is up.</summary>
    public RelayLink? Current { get; private set; }

    /// <summary>Completes with the link once the hop is up (at once if it is).</summary>
    public Task<RelayLink> WhenConnectedAsync(CancellationToken cancellationToken) => Volatile.Read(ref _connected).Task.WaitAsync(cancellationToken);

    /// <summary>Completes after the first attempt to join the relay: null when the hop came up, else why not.</summary>
    public Task<Exception?> FirstAttemptAsync(CancellationToken cancellationToken) => _firstAttempt.Task.WaitAsync(cancellationToken);

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        try
        {
            await KeepConnectedAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            // Whoever still waits for a hop learns that none is coming.
            Volatile.Read(ref _connected).TrySetCanceled(stoppingToken);
            _firstAttempt.TrySetCanceled(stoppingToken);
        }
    }

    private async Task KeepConnectedAsync(CancellationToken stoppingToken)
    {
        var options = client.Options;
        var time = options.TimeProvider;
        var backoff = new Backoff(options.FirstReconnectBackoff, options.MaxReconnectBackoff);
        while (!stoppingToken.IsCancellationRequested)
        {
            var since = 0L;
            try
            {
                var link = await ConnectAsync(stoppingToken).ConfigureAwait(false);
                await using (link.ConfigureAwait(false))
                {
                    Current = link;
                    since = time.GetTimestamp();
                    Interlocked.Increment(ref _connections);
                    client.Telemetry.HopEstablished();
                    Volatile.Read(ref _connected).TrySetResult(link);
                    _firstAttempt.TrySetResult(null);
                    LogConnected(logger, Relay.Identifier, link.Welcome.Relay);
                    await AcceptLoopAsync(link, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                // Stopping: whatever the attempt threw as it was cancelled is the stop, not a failure to report. (A hop
                // handshake cancelled while it waits for the relay's ACCEPT throws SecureChannelException HandshakeTimeout,
                // not OperationCanceledException, and escaped from AgentClient.DisposeAsync.)
                return;
            }
            catch (Exception e)
            {
                // Whatever went wrong (refused, reset, a relay that never sent WELCOME, a bug), the hop is retried:
                // an agent must not lose its relay for good over one failure.
                LogLost(logger, Relay.EndPoint.ToString(), e.Message);
                _firstAttempt.TrySetResult(e);
            }
            finally
            {
                if (Current is not null)
                {
                    Current = null;
                    Volatile.Write(ref _connected, new TaskCompletionSource<RelayLink>(TaskCreationOptions.RunContinuationsAsynchronously));
                }
            }

            // A hop that stayed up a while earns a fresh back-off; one that drops at once keeps backing off.
            if (since != 0 && time.GetElapsedTime(since) >= options.MaxReconnectBackoff)
            {
                backoff.Reset();
            }

            try
            {
                await Task.Delay(backoff.Next(), options.TimeProvider, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<RelayLink> ConnectAsync(CancellationToken cancellationToken)
    {
        var options = client.Options;
        var pipe = await SocketPipe.ConnectAsync(Relay.EndPoint, TimeSpan.FromSeconds(10), options.TimeProvider, cancellationToken).ConfigureAwait(false);
        try
        {
            var hop = await SecureChannel.ConnectAsync(pipe, await client.ChannelOptionsAsync(Protocol.Policy.AccessPolicy.Parse($"peer.identifier == \"{Relay.Identifier}\""), cancellationToken, sendAcknowledgements: false).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            var linkOptions = new RelayLinkOptions { Listen = options.Listen, Names = options.Listen ? options.Names : [], TimeProvider = options.TimeProvider, Logger = logger };
            return await RelayLink.ConnectAsync(hop, linkOptions, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await pipe.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    // Every circuit opened to this agent becomes a pending incoming channel; the hop ends when the link does.
    private async Task AcceptLoopAsync(RelayLink link, CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                client.OnIncoming(await link.AcceptCircuitAsync(stoppingToken).ConfigureAwait(false));
            }
        }
        catch (RelayException)
        {
            // The link ended: its completion says why.
        }

        var reason = await link.Completion.WaitAsync(stoppingToken).ConfigureAwait(false);
        LogLost(logger, Relay.EndPoint.ToString(), $"{reason.Code}: {reason.Reason}");
    }

    [LoggerMessage(EventId = 60, Level = LogLevel.Information, Message = "Hop to relay {Relay} ({Name}) is up")]
    private static partial void LogConnected(ILogger logger, Protocol.Identity.Identifier relay, string name);

    [LoggerMessage(EventId = 61, Level = LogLevel.Warning, Message = "Hop to relay {EndPoint} lost ({Why}); reconnecting after a back-off")]
    private static partial void LogLost(ILogger logger, string endPoint, string why);
}
