using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Publication;

/// <summary>
/// One subscriber's outbound pushes. Pending pushes coalesce: a newer revocation list replaces an older one
/// not yet sent, and likewise per policy resource, so what waits for a subscriber is bounded by the number of
/// resources, never by the number of publications. A push the subscriber does not take within
/// <see cref="AuthorityOptions.SubscriberSendTimeout"/> cuts it: it catches up when it reconnects.
/// </summary>
internal sealed partial class Subscriber : IDisposable
{
    private readonly SecureChannel _channel;
    private readonly TimeSpan _sendTimeout;
    private readonly TimeProvider _time;
    private readonly AuthorityMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, Push> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _policyVersionsSent;
    private Push? _revocations;
    private ulong _revocationSequenceSent;
    private Task _writer = Task.CompletedTask;
    private bool _disposed;

    public Subscriber(SecureChannel channel, SubscribeRequest held, TimeSpan sendTimeout, TimeProvider time, AuthorityMetrics metrics, ILogger logger)
    {
        _channel = channel;
        _sendTimeout = sendTimeout;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _revocationSequenceSent = held.RevocationSequence;
        _policyVersionsSent = new Dictionary<string, ulong>(held.PolicyVersions, StringComparer.Ordinal);
    }

    /// <summary>Completes when the subscriber was cut or stopped.</summary>
    public Task Completion => _writer;

    public void Start() => _writer = Task.Run(WriteLoopAsync);

    /// <summary>Queues <paramref name="push"/> unless this subscriber has it (or a newer one) already, sent or pending.</summary>
    public void Offer(Push push)
    {
        lock (_lock)
        {
            // A publication can race with the subscriber's session ending: then there is nobody left to tell.
            if (_disposed)
            {
                return;
            }

            if (push.Resource is not { } resource)
            {
                if (push.Version <= _revocationSequenceSent || _revocations?.Version >= push.Version)
                {
                    return;
                }

                _revocations = push;
            }
            else
            {
                if ((_policyVersionsSent.TryGetValue(resource, out var sent) && push.Version <= sent)
                    || (_policies.TryGetValue(resource, out var pending) && pending.Version >= push.Version))
                {
                    return;
                }

                _policies[resource] = push;
            }

            Signal();
        }
    }

    public async Task StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _writer.ConfigureAwait(false);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _stopping.Dispose();
            _signal.Dispose();
        }
    }

    private void Signal()
    {
        if (_signal.CurrentCount == 0)
        {
            try
            {
                _signal.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled by a concurrent offer: one wake-up takes everything pending.
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        try
        {
            while (true)
            {
                await _signal.WaitAsync(_stopping.Token).ConfigureAwait(false);
                while (TakeNext() is { } push)
                {
                    using var deadline = new CancellationTokenSource(_sendTimeout, _time);
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, _stopping.Token);
                    try
                    {
                        await _channel.SendAsync(push.Message, linked.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested && !_stopping.IsCancellationRequested)
                    {
                        // It stopped reading: cut it rather than hold its pushes. It catches up on reconnect.
                        _metrics.SubscriberCut();
                        LogCut(_logger, _channel.Peer.Identifier.ToString(), _sendTimeout);
                        await _channel.DisposeAsync().ConfigureAwait(false);
                        return;
                    }

                    _metrics.Propagated(_time.GetElapsedTime(push.Since));
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped with its session.
        }
        catch (SecureChannelException)
        {
            // The channel ended; the session sees why.
        }
    }

    private Push? TakeNext()
    {
        lock (_lock)
        {
            if (_revocations is { } revocations)
            {
                _revocations = null;
                _revocationSequenceSent = revocations.Version;
                return revocations;
            }

            foreach (var (resource, pending) in _policies)
            {
                _policies.Remove(resource);
                _policyVersionsSent[resource] = pending.Version;
                return pending;
            }

            return null;
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Subscriber {Subscriber} cut: it took no push within {Timeout}")]
    private static partial void LogCut(ILogger logger, string subscriber, TimeSpan timeout);
}
