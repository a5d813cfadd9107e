using Microsoft.Extensions.Logging;
using SecureChannels.Client.Messaging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Resilience;

namespace SecureChannels.Client.Reopening;

/// <summary>What a <see cref="ReopeningChannel"/> promises about messages in flight when its channel breaks.</summary>
public enum Delivery
{
    /// <summary>
    /// Nothing is ever sent twice. A message or request in flight when the channel broke may be lost: the send or
    /// the request fails with the reason (<see cref="SecureChannelException"/>, or <see cref="AgentRequestException"/>
    /// with <see cref="RequestFailure.ChannelClosed"/>), and the caller decides whether to try again.
    /// </summary>
    AtMostOnce,

    /// <summary>
    /// A request not yet answered when the channel broke is sent again on the re-opened channel, until it is answered
    /// or its timeout passes, with the same <see cref="AgentMessage.RequestKey"/> so the responder can recognise a
    /// repeat: it may see one request more than once. One-way sends stay at most once (nothing acknowledges them):
    /// send what must arrive as a request.
    /// </summary>
    AtLeastOnce,
}

/// <summary>How a <see cref="ReopeningChannel"/> re-opens.</summary>
public sealed class ReopeningChannelOptions
{
    /// <summary>What happens to requests in flight when the channel breaks. Defaults to <see cref="Delivery.AtMostOnce"/>.</summary>
    public Delivery Delivery { get; init; } = Delivery.AtMostOnce;

    /// <summary>The first wait before re-opening; it doubles, jittered, up to <see cref="MaxBackoff"/>. Defaults to 1 s.</summary>
    public TimeSpan FirstBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts. Defaults to 30 s; at most a day.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A channel to one address that is opened again, after a jittered back-off, whenever its circuit breaks (the relay
/// restarted, the hop dropped, the idle timeout). What happens to messages in flight is stated by <see cref="Delivery"/>.
/// It stops for good, and <see cref="Completion"/> says why, when the peer closes gracefully or when re-opening cannot
/// help: a refusal by either side's policy, a failed authentication, a revoked credential, a protocol error.
/// </summary>
/// <remarks>
/// Each re-open is a new handshake: the peer is verified again under the current credentials and policy, and
/// <see cref="Current"/> shows the channel in use. Messages received on a broken channel before it broke are still
/// delivered by <see cref="ReceiveAsync"/>, then those of the next channel; a broken channel is released once it is
/// read to its end (or when this is disposed), so a caller that never receives holds the broken channels' unread
/// messages until then.
/// </remarks>
public sealed partial class ReopeningChannel : IAsyncDisposable
{
    private readonly AgentClient _client;
    private readonly ReopeningChannelOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _disposing = new();
    private readonly TaskCompletionSource<ChannelCloseInfo> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();

    // Every channel, in the order they were opened: the reader drains the first before moving to the next, so no
    // message of a channel between two breaks is skipped. The last one is the channel in use (unless it broke).
    private readonly List<AgentChannel> _channels = [];
    private readonly Task _supervisor;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _reopening;
    private int _reopens;
    private int _disposed;

    private ReopeningChannel(AgentClient client, string address, AgentChannel first, ReopeningChannelOptions options)
    {
        _client = client;
        _options = options;
        _logger = client.Options.LoggerFactory.CreateLogger<ReopeningChannel>();
        Address = address;
        _channels.Add(first);

        // The supervisor lives as long as the channel: it must not run inside the caller's span.
        using (ExecutionContext.SuppressFlow())
        {
            _supervisor = Task.Run(() => SuperviseAsync(first));
        }
    }

    /// <summary>The address the channel is (re-)opened to.</summary>
    public string Address { get; }

    /// <summary>What happens to requests in flight when the channel breaks.</summary>
    public Delivery Delivery => _options.Delivery;

    /// <summary>The channel in use, or null while it is being re-opened (or after it stopped).</summary>
    public AgentChannel? Current
    {
        get
        {
            lock (_lock)
            {
                return _reopening || _finished.Task.IsCompleted ? null : _channels[^1];
            }
        }
    }

    /// <summary>How many times the channel was re-opened.</summary>
    public int Reopens => Volatile.Read(ref _reopens);

    /// <summary>Completes when the channel stopped for good (not when it breaks and is re-opened), with why.</summary>
    public Task<ChannelCloseInfo> Completion => _finished.Task;

    /// <summary>Opens the first channel (its failure is the caller's) and keeps it open from then on.</summary>
    internal static async Task<ReopeningChannel> OpenAsync(AgentClient client, string address, ReopeningChannelOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.FirstBackoff, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBackoff, options.FirstBackoff, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxBackoff, TimeSpan.FromDays(1), nameof(options));
        var first = await client.OpenChannelAsync(address, cancellationToken).ConfigureAwait(false);
        return new ReopeningChannel(client, address, first, options);
    }

    /// <summary>Sends one message of bytes on the channel in use, waiting while it is re-opened. At most once.</summary>
    /// <exception cref="SecureChannelException">The channel broke during the send (the message may be lost), or it stopped for good.</exception>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync(null, cancellationToken).ConfigureAwait(false)).SendAsync(message, cancellationToken).ConfigureAwait(false);

    /// <summary>Sends a typed message on the channel in use, waiting while it is re-opened. At most once.</summary>
    /// <exception cref="SecureChannelException">The channel broke during the send (the message may be lost), or it stopped for good.</exception>
    public async ValueTask SendMessageAsync<T>(T message, CancellationToken cancellationToken = default) =>
        await (await ReadyAsync(null, cancellationToken).ConfigureAwait(false)).SendMessageAsync(message, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Sends a request and waits for its response, at most <paramref name="timeout"/> in all, re-opens included. With
    /// <see cref="Delivery.AtLeastOnce"/>, a request whose channel broke before the answer is sent again.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is not between 1 ms and a day.</exception>
    /// <exception cref="AgentRequestException">Timed out, faulted, a bad response, or (at most once) the channel broke first.</exception>
    /// <exception cref="SecureChannelException">The channel stopped for good.</exception>
    public async Task<TResponse> RequestAsync<TRequest, TResponse>(TRequest request, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var time = _client.Options.TimeProvider;
        var limit = timeout ?? _client.Options.DefaultRequestTimeout;
        if (limit < TimeSpan.FromMilliseconds(1) || limit > Protocol.Messaging.MessageEnvelope.MaxTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), limit, $"A request timeout is between 1 ms and {Protocol.Messaging.MessageEnvelope.MaxTimeout}.");
        }

        var started = time.GetTimestamp();
        var key = Guid.NewGuid();
        AgentChannel? broken = null;
        while (true)
        {
            AgentChannel channel;
            try
            {
                using var deadline = new CancellationTokenSource(Remaining() > TimeSpan.Zero ? Remaining() : TimeSpan.Zero, time);
                using var waiting = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
                channel = await ReadyAsync(broken, waiting.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new AgentRequestException(RequestFailure.TimedOut, $"The channel was not re-opened within the request's {limit}.");
            }

            // The wait for a re-opened channel counts against the request's time too.
            var remaining = Remaining();
            if (remaining < TimeSpan.FromMilliseconds(1))
            {
                throw new AgentRequestException(RequestFailure.TimedOut, $"No response within {limit}, re-opens included.");
            }

            try
            {
                return await channel.RequestWithKeyAsync<TRequest, TResponse>(request, remaining, key, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Delivery == Delivery.AtLeastOnce && Broke(e) && !_finished.Task.IsCompleted)
            {
                // Only a request whose channel really broke is sent again, and only on the channel that replaces it.
                broken = channel;
                LogResending(_logger, Address);
            }
        }

        TimeSpan Remaining() => limit - time.GetElapsedTime(started);
    }

    /// <summary>
    /// The next message: those of the first channel, then, after each re-open, those of the next (what arrived on a
    /// channel before it broke comes first). Null once the peer closed gracefully.
    /// </summary>
    /// <exception cref="SecureChannelException">The channel stopped for good, abnormally.</exception>
    public async ValueTask<AgentMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            AgentChannel? reading;
            lock (_lock)
            {
                reading = _channels[0];
            }

            try
            {
                var message = await reading.ReceiveAsync(cancellationToken).ConfigureAwait(false);
                if (message is not null)
                {
                    return message;
                }
            }
            catch (SecureChannelException e) when (Reopenable(e.Code, e.FromPeer))
            {
                // That channel broke and is drained: read its successor, if there is one.
            }

            // Drained: move on to the next channel, or, once there is none and never will be, report the end.
            while (true)
            {
                Task changed;
                lock (_lock)
                {
                    if (!ReferenceEquals(_channels[0], reading))
                    {
                        // Another reader moved on already (and releases what it read).
                        reading = null;
                        break;
                    }

                    if (_channels.Count > 1)
                    {
                        _channels.RemoveAt(0);
                        break;
                    }

                    if (_finished.Task.IsCompleted)
                    {
                        var info = _finished.Task.Result;
                        return info.Code == ChannelErrorCode.Normal ? null : throw new SecureChannelException(info.Code, info.Reason, info.FromPeer);
                    }

                    changed = _changed.Task;
                }

                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            if (reading is not null)
            {
                await reading.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Closes the channel in use gracefully and stops re-opening.</summary>
    public async Task CloseAsync(CancellationToken cancellationToken = default)
    {
        var channel = Current;
        Finish(new ChannelCloseInfo(ChannelErrorCode.Normal, FromPeer: false, "The channel was closed."));
        await _disposing.CancelAsync().ConfigureAwait(false); // no re-open after a close
        if (channel is not null)
        {
            await channel.CloseAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Finish(new ChannelCloseInfo(ChannelErrorCode.GoingAway, FromPeer: false, "The channel was disposed."));
        await _disposing.CancelAsync().ConfigureAwait(false);
        await _supervisor.ConfigureAwait(false);
        List<AgentChannel> channels;
        lock (_lock)
        {
            channels = [.. _channels];
        }

        await Task.WhenAll(channels.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        _disposing.Dispose();
    }

    // A GoingAway of this side's own making (the channel or the agent was disposed) is an end, not a break; the others
    // in the "no" group are answers a new handshake cannot change.
    private static bool Reopenable(ChannelErrorCode code, bool fromPeer) => code switch
    {
        ChannelErrorCode.ConnectionLost or ChannelErrorCode.IdleTimeout or ChannelErrorCode.HandshakeTimeout or ChannelErrorCode.CredentialExpired => true,
        ChannelErrorCode.GoingAway => fromPeer,
        _ => false,
    };

    // Judged from the failure itself: the channel's own completion may not be visible yet on this thread.
    private static bool Broke(Exception e) => e switch
    {
        AgentRequestException { Failure: RequestFailure.ChannelClosed, Close: { } close } => Reopenable(close.Code, close.FromPeer),
        SecureChannelException { Code: not ChannelErrorCode.MessageTooLarge } failure => Reopenable(failure.Code, failure.FromPeer),
        _ => false,
    };

    // The channel in use (other than `after`, which broke), once there is one.
    private async Task<AgentChannel> ReadyAsync(AgentChannel? after, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (_finished.Task.IsCompleted)
                {
                    var info = _finished.Task.Result;
                    throw new SecureChannelException(info.Code, $"The channel stopped: {info.Reason}", info.FromPeer);
                }

                var current = _channels[^1];
                if (!_reopening && !ReferenceEquals(current, after) && !current.Completion.IsCompleted)
                {
                    return current;
                }

                changed = _changed.Task;
            }

            // Re-opening, or the break is not noticed yet: the supervisor publishes the next state.
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // Changes the state under the lock and wakes whoever waits for a change; false once the channel has stopped.
    private bool Publish(Action change)
    {
        TaskCompletionSource previous;
        lock (_lock)
        {
            if (_finished.Task.IsCompleted)
            {
                return false;
            }

            change();
            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
        return true;
    }

    private void Finish(ChannelCloseInfo info)
    {
        TaskCompletionSource previous;
        lock (_lock)
        {
            _finished.TrySetResult(info);
            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    private async Task SuperviseAsync(AgentChannel current)
    {
        var time = _client.Options.TimeProvider;
        var backoff = new Backoff(_options.FirstBackoff, _options.MaxBackoff);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token, _client.Stopping);
        var stopping = linked.Token;
        try
        {
            while (true)
            {
                var since = time.GetTimestamp();
                var ended = await current.Completion.WaitAsync(stopping).ConfigureAwait(false);
                if (!Reopenable(ended.Code, ended.FromPeer))
                {
                    Finish(ended);
                    return;
                }

                // A channel that stayed up a while earns a fresh back-off; one that breaks at once keeps backing off.
                if (time.GetElapsedTime(since) >= _options.MaxBackoff)
                {
                    backoff.Reset();
                }

                LogBroken(_logger, Address, ended.Code);
                if (!Publish(() => _reopening = true))
                {
                    return;
                }

                while (true)
                {
                    await Task.Delay(backoff.Next(), time, stopping).ConfigureAwait(false);
                    try
                    {
                        var reopened = await _client.OpenChannelAsync(Address, stopping).ConfigureAwait(false);
                        if (!Publish(() =>
                        {
                            _channels.Add(reopened);
                            _reopening = false;
                        }))
                        {
                            // Stopped meanwhile: the new channel has no reader and no sender.
                            await reopened.DisposeAsync().ConfigureAwait(false);
                            return;
                        }

                        Interlocked.Increment(ref _reopens);
                        _client.Telemetry.Reopened();
                        LogReopened(_logger, Address, reopened.Peer.Identifier);
                        current = reopened;
                        break;
                    }
                    catch (SecureChannelException e) when (!Reopenable(e.Code, e.FromPeer))
                    {
                        Finish(new ChannelCloseInfo(e.Code, e.FromPeer, e.Message));
                        return;
                    }
                    catch (ObjectDisposedException) when (_client.IsDisposed)
                    {
                        Finish(new ChannelCloseInfo(ChannelErrorCode.GoingAway, FromPeer: false, "The agent was disposed."));
                        return;
                    }
                    catch (RelayException e) when (e.Code == RelayErrorCode.Refused)
                    {
                        Finish(new ChannelCloseInfo(ChannelErrorCode.AccessDenied, FromPeer: true, e.Message));
                        return;
                    }
                    catch (Exception e) when (e is SecureChannelException or RelayException or IOException)
                    {
                        LogRetrying(_logger, Address, e.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Disposed, or the agent is stopping (which disposes the channel in use).
            Finish(new ChannelCloseInfo(ChannelErrorCode.GoingAway, FromPeer: false, "The agent was disposed."));
        }
        catch (Exception e)
        {
            // Whatever else went wrong (the agent disposed under it, a bug), callers must not wait forever: they hear
            // that re-opening stopped.
            LogFailed(_logger, Address, e);
            Finish(new ChannelCloseInfo(ChannelErrorCode.GoingAway, FromPeer: false, $"Re-opening stopped: {e.Message}"));
        }
    }

    [LoggerMessage(EventId = 80, Level = LogLevel.Warning, Message = "Channel to {Address} broke ({Code}); re-opening after a back-off")]
    private static partial void LogBroken(ILogger logger, string address, ChannelErrorCode code);

    [LoggerMessage(EventId = 81, Level = LogLevel.Information, Message = "Channel to {Address} re-opened, peer {Peer}")]
    private static partial void LogReopened(ILogger logger, string address, Protocol.Identity.Identifier peer);

    [LoggerMessage(EventId = 82, Level = LogLevel.Information, Message = "Re-opening the channel to {Address} failed ({Why}); trying again after a back-off")]
    private static partial void LogRetrying(ILogger logger, string address, string why);

    [LoggerMessage(EventId = 84, Level = LogLevel.Error, Message = "Re-opening the channel to {Address} stopped on an unexpected failure")]
    private static partial void LogFailed(ILogger logger, string address, Exception exception);

    [LoggerMessage(EventId = 83, Level = LogLevel.Information, Message = "Sending a request again on the re-opened channel to {Address} (at least once)")]
    private static partial void LogResending(ILogger logger, string address);
}
