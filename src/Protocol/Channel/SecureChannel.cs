using System.Buffers;
using System.Collections.Immutable;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Channel;

/// <summary>
/// A mutually authenticated, forward-secret channel to one verified peer over any <see cref="IDuplexPipe"/>.
/// Messages of any size up to <see cref="SecureChannelOptions.MaxMessageSize"/> arrive whole, in order and
/// once. The channel keeps re-checking the peer's credentials and closes itself, with the reason, when one
/// expires or is revoked; messages accepted before that are still delivered. Either side can present refreshed
/// credentials without a new handshake (<see cref="UpdateCredentialsAsync"/>).
/// </summary>
/// <remarks>
/// Send from any number of tasks (sends are serialized); receive from one task at a time.
/// <see cref="DisposeAsync"/> aborts; <see cref="CloseAsync"/> closes gracefully so both sides see it.
/// </remarks>
public sealed partial class SecureChannel : IAsyncDisposable
{
    private readonly IDuplexPipe _pipe;
    private readonly NoiseTransport _transport;
    private readonly SecureChannelOptions _options;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly System.Threading.Channels.Channel<ChannelMessage> _inbox;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abandonOutput = new();
    private readonly TaskCompletionSource<ChannelCloseInfo> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly byte[] _handshakeHash;
    private readonly ITimer _timer;
    private readonly byte[] _ackBody = new byte[ChannelFraming.AckBodyLength];
    private readonly Lock _ackLock = new();
    private Task _pump = Task.CompletedTask;
    private Task _outputFinished = Task.CompletedTask;
    private long _recordsSinceRekey;
    private DateTimeOffset _lastRekey;
    private DateTimeOffset _lastSent;
    private DateTimeOffset _lastReceived;
    private bool _closeSent;
    private int _terminated;

    // Delivery accounting (docs/protocol.md §8.3, ACK): messages written, messages the peer confirmed, messages
    // accepted from the peer and the count last confirmed to it. _ackSignal wakes WaitForAcknowledgementAsync.
    private long _messagesSent;
    private long _messagesAcknowledged;
    private long _messagesReceived;
    private long _receivedAcknowledged;
    private TaskCompletionSource? _ackSignal;

    // Credential updates accepted in the current minute (MaxCredentialUpdatesPerMinute); touched by the pump only.
    private DateTimeOffset _updateWindowStart = DateTimeOffset.MinValue;
    private int _updatesInWindow;
    private ChannelCloseInfo? _closeInfo;
    private VerifiedPeer _peer;

    private SecureChannel(IDuplexPipe pipe, ChannelHandshake.Result handshake, SecureChannelOptions options, bool isInitiator)
    {
        _pipe = pipe;
        _transport = handshake.Transport;
        _options = options;
        _handshakeHash = handshake.HandshakeHash;
        _peer = handshake.Peer;
        IsInitiator = isInitiator;
        _inbox = System.Threading.Channels.Channel.CreateBounded<ChannelMessage>(new BoundedChannelOptions(options.ReceiveQueueCapacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        var now = options.TimeProvider.GetUtcNow();
        (_lastRekey, _lastSent, _lastReceived) = (now, now, now);
        var tick = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(250).Ticks, Math.Min(options.KeepaliveInterval.Ticks, options.IdleTimeout.Ticks) / 4));
        _timer = options.TimeProvider.CreateTimer(static state => ((SecureChannel)state!).OnTick(), this, tick, tick);
    }

    /// <summary>
    /// What the handshake proved about the other side, with the credentials it presented last: a credential
    /// update replaces the whole value at once (same identity and principal, new credentials, attributes and
    /// <see cref="VerifiedPeer.NotAfter"/>), so read it again rather than keeping an old one.
    /// </summary>
    public VerifiedPeer Peer => Volatile.Read(ref _peer);

    /// <summary>True on the side that connected.</summary>
    public bool IsInitiator { get; }

    /// <summary>The Noise handshake hash: the same on both sides and unique to this channel, for channel binding.</summary>
    public ReadOnlyMemory<byte> HandshakeHash => _handshakeHash;

    /// <summary>Completes when the channel has ended, with how and why.</summary>
    public Task<ChannelCloseInfo> Completion => _closed.Task;

    /// <summary>Messages this side has handed to the connection, numbered 1, 2, … in the order sent.</summary>
    public long MessagesSent => Volatile.Read(ref _messagesSent);

    /// <summary>
    /// The peer confirmed (with ACK records) that it accepted messages 1 to this number. Once the channel has ended,
    /// messages after it up to <see cref="MessagesSent"/> are those the peer never confirmed: each either arrived
    /// and its confirmation did not, or did not arrive. No message at or below it was lost.
    /// </summary>
    public long MessagesAcknowledged => Volatile.Read(ref _messagesAcknowledged);

    /// <summary>Messages this side accepted from the peer (and will hand to <see cref="ReceiveAsync"/>).</summary>
    public long MessagesReceived => Volatile.Read(ref _messagesReceived);

    /// <summary>
    /// Opens a channel as the initiator: runs the handshake, verifies and judges the responder, and waits for
    /// the responder to accept this side in turn.
    /// </summary>
    /// <exception cref="SecureChannelException">The handshake failed, timed out, or either side refused the other.</exception>
    public static Task<SecureChannel> ConnectAsync(IDuplexPipe pipe, SecureChannelOptions options, CancellationToken cancellationToken = default) =>
        OpenAsync(pipe, options, isInitiator: true, cancellationToken);

    /// <summary>Opens a channel as the responder: runs the handshake, verifies and judges the initiator, and accepts it.</summary>
    /// <exception cref="SecureChannelException">The handshake failed, timed out, or either side refused the other.</exception>
    public static Task<SecureChannel> AcceptAsync(IDuplexPipe pipe, SecureChannelOptions options, CancellationToken cancellationToken = default) =>
        OpenAsync(pipe, options, isInitiator: false, cancellationToken);

    /// <summary>Sends one message (any size up to the limit, including empty).</summary>
    /// <exception cref="SecureChannelException">The channel is closed, or the message exceeds <see cref="SecureChannelOptions.MaxMessageSize"/>.</exception>
    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default) =>
        SendAsync(new ReadOnlySequence<byte>(message), cancellationToken);

    /// <summary>Sends one message made of a sequence of segments, without joining them first.</summary>
    /// <exception cref="SecureChannelException">The channel is closed, or the message exceeds <see cref="SecureChannelOptions.MaxMessageSize"/>.</exception>
    // Pooled: the per-message paths must not allocate a state machine box each time they wait.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendAsync(ReadOnlySequence<byte> message, CancellationToken cancellationToken = default)
    {
        if (message.Length > _options.MaxMessageSize)
        {
            throw new SecureChannelException(ChannelErrorCode.MessageTooLarge, $"A message of {message.Length} bytes exceeds the {_options.MaxMessageSize}-byte limit.");
        }

        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();

            // A side that sends keeps confirming what it received on the way, without records of their own.
            WriteAckIfDue();
            do
            {
                var fragment = message.Slice(0, Math.Min(message.Length, ChannelFraming.MaxFragmentLength));
                message = message.Slice(fragment.End);
                WriteRecord(message.IsEmpty ? RecordType.DataLast : RecordType.DataMore, fragment);
            }
            while (!message.IsEmpty);

            // Counted once written: the peer may confirm it as soon as the flush below lets it go.
            Volatile.Write(ref _messagesSent, _messagesSent + 1);
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>
    /// Presents <paramref name="credentials"/> to the peer in place of every chain this side presented before (in
    /// the handshake or an earlier update), without a new handshake: how a long-lived channel outlives the
    /// refresh of short-lived credentials. Messages sent before and after it keep their order; none is lost.
    /// </summary>
    /// <remarks>
    /// The peer verifies the chains as in the handshake, requires them to act for the same principal as before,
    /// and asks its access policy again. If any of that fails it closes the channel, and the reason arrives
    /// through <see cref="Completion"/> and <see cref="ReceiveAsync"/>. The key attestation is not replaced: a
    /// channel that must outlive it needs a new handshake.
    /// </remarks>
    /// <exception cref="ArgumentException">A chain is not about this side's identity, or the chains do not fit in one record.</exception>
    /// <exception cref="SecureChannelException">The channel is closed.</exception>
    public async ValueTask UpdateCredentialsAsync(IReadOnlyList<CredentialChain> credentials, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        var self = _options.Identity.Identifier;
        foreach (var chain in credentials)
        {
            ArgumentNullException.ThrowIfNull(chain, nameof(credentials));

            // The peer would refuse it (SubjectMismatch) and close the channel: a caller's mistake, caught here.
            if (chain.Leaf.Credential.Subject != self)
            {
                throw new ArgumentException($"A credential chain is about {chain.Leaf.Credential.Subject}, not this side ({self}).", nameof(credentials));
            }
        }

        var body = CredentialUpdate.Encode(credentials);
        if (body.Length > ChannelFraming.MaxFragmentLength)
        {
            throw new ArgumentException($"The credential chains take {body.Length} bytes; one record holds at most {ChannelFraming.MaxFragmentLength}.", nameof(credentials));
        }

        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();
            WriteRecord(RecordType.CredentialUpdate, new ReadOnlySequence<byte>(body));
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>
    /// Receives the next message, or null once the peer closed gracefully. After an abnormal end, the messages
    /// received before it are returned first, then this throws the reason.
    /// </summary>
    /// <exception cref="SecureChannelException">The channel ended abnormally (peer refused, credential expired or revoked, idle, protocol error, connection lost).</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ChannelMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _inbox.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e) when (e.InnerException is SecureChannelException failure)
        {
            throw new SecureChannelException(failure.Code, failure.Message, failure.FromPeer);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    /// <summary>
    /// Waits until the peer has confirmed it accepted the first <paramref name="count"/> messages sent (see
    /// <see cref="MessagesAcknowledged"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or more than <see cref="MessagesSent"/>.</exception>
    /// <exception cref="SecureChannelException">The channel ended before the peer confirmed them (the close code says why).</exception>
    public async ValueTask WaitForAcknowledgementAsync(long count, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MessagesSent);
        while (true)
        {
            Task signal;
            lock (_ackLock)
            {
                if (MessagesAcknowledged >= count)
                {
                    return;
                }

                // Completion, not _terminated: Terminate sets it after recording why, and before waking waiters.
                if (_closed.Task.IsCompleted)
                {
                    var info = _closed.Task.Result;
                    throw new SecureChannelException(info.Code, $"The channel ended with {count - MessagesAcknowledged} of the first {count} messages unconfirmed: {info.Reason}", info.FromPeer);
                }

                signal = (_ackSignal ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Closes gracefully: tells the peer, and waits (until <paramref name="cancellationToken"/>) for the peer's
    /// own close, so both sides see a graceful end rather than an abort.
    /// </summary>
    public async Task CloseAsync(CancellationToken cancellationToken = default)
    {
        await SendCloseAsync(ChannelErrorCode.Normal, cancellationToken).ConfigureAwait(false);
        await _closed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Aborts the channel with <paramref name="code"/>: the peer receives a CLOSE with that code, and this side's
    /// <see cref="Completion"/> and <see cref="ReceiveAsync"/> report it with <paramref name="reason"/> (which stays
    /// local). For a layer above the channel that finds the peer breaking its own protocol. The returned task completes
    /// once the CLOSE is handed to the transport, which a peer that reads nothing can delay until
    /// <see cref="DisposeAsync"/>: bound the wait. It never faults.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="code"/> is <see cref="ChannelErrorCode.Normal"/>: use <see cref="CloseAsync"/>.</exception>
    public Task AbortAsync(ChannelErrorCode code, string reason)
    {
        ArgumentOutOfRangeException.ThrowIfEqual(code, ChannelErrorCode.Normal);
        ArgumentNullException.ThrowIfNull(reason);
        Terminate(new ChannelCloseInfo(code, FromPeer: false, reason), code, sendClose: true);
        return _outputFinished;
    }

    /// <summary>Aborts the channel if it is still open and releases everything it holds.</summary>
    public async ValueTask DisposeAsync()
    {
        Terminate(new ChannelCloseInfo(ChannelErrorCode.GoingAway, FromPeer: false, "The channel was disposed."), ChannelErrorCode.GoingAway, sendClose: true);
        await _pump.ConfigureAwait(false);

        // The close record is best effort: if it is still pending (a peer that reads nothing), stop waiting.
        if (!_outputFinished.IsCompleted)
        {
            await _abandonOutput.CancelAsync().ConfigureAwait(false);
        }

        await _outputFinished.ConfigureAwait(false);
        _abandonOutput.Dispose();
        await _timer.DisposeAsync().ConfigureAwait(false);
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _transport.Dispose();
        }
        finally
        {
            _sendLock.Release();
        }

        _stopping.Dispose();
        while (_inbox.Reader.TryRead(out var message))
        {
            message.Dispose();
        }
    }

    /// <summary>Checks the peer's credentials again now (as the channel does on expiry and on new revocation lists).</summary>
    public void Reevaluate()
    {
        // One snapshot: a credential update may replace the peer meanwhile, and the chains and NotAfter checked
        // must belong together.
        var peer = Peer;
        foreach (var chain in peer.Chains)
        {
            if (!_options.Verifier.IsStillValid(chain, out var reason))
            {
                Fail(PresentedCredentials.ErrorCode(reason!.Kind), $"The peer's credential no longer holds: {reason.Message}");
                return;
            }
        }

        if (_options.TimeProvider.GetUtcNow() >= peer.NotAfter)
        {
            Fail(ChannelErrorCode.CredentialExpired, $"The peer's key attestation or credentials expired at {peer.NotAfter:O}.");
        }
    }

    private static async Task<SecureChannel> OpenAsync(IDuplexPipe pipe, SecureChannelOptions options, bool isInitiator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        ArgumentNullException.ThrowIfNull(options);
        using var timeout = new CancellationTokenSource(options.HandshakeTimeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        ChannelHandshake.Result result;
        try
        {
            result = await ChannelHandshake.RunAsync(pipe, options, isInitiator, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            var failure = new SecureChannelException(ChannelErrorCode.HandshakeTimeout, $"The handshake did not complete within {options.HandshakeTimeout}.", e);
            Audit(options, ChannelEventKind.Denied, null, failure.Code, failure.Message);
            await ReleaseAsync(pipe).ConfigureAwait(false);
            throw failure;
        }
        catch (SecureChannelException e)
        {
            Audit(options, ChannelEventKind.Denied, e.Peer, e.Code, e.Message);
            await ReleaseAsync(pipe).ConfigureAwait(false);
            throw;
        }
        catch (OperationCanceledException)
        {
            await ReleaseAsync(pipe).ConfigureAwait(false);
            throw;
        }
        catch (IOException e)
        {
            // The transport failed (a reset socket, a reset relay circuit): the documented error, not the raw one.
            var failure = new SecureChannelException(ChannelErrorCode.ConnectionLost, $"The connection failed during the handshake: {e.Message}", e);
            Audit(options, ChannelEventKind.Denied, null, failure.Code, failure.Message);
            await ReleaseAsync(pipe).ConfigureAwait(false);
            throw failure;
        }

        var channel = new SecureChannel(pipe, result, options, isInitiator);
        try
        {
            if (isInitiator)
            {
                await channel.AwaitAcceptAsync(linked.Token).ConfigureAwait(false);
            }
            else
            {
                await channel._sendLock.WaitAsync(linked.Token).ConfigureAwait(false);
                try
                {
                    channel.WriteRecord(RecordType.Accept, default);
                    await channel.FlushAsync(linked.Token).ConfigureAwait(false);
                }
                finally
                {
                    channel._sendLock.Release();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The caller gave up: its cancellation, as at every earlier step, not a timeout of the peer's.
            await channel.DisposeAsync().ConfigureAwait(false);
            await ReleaseAsync(pipe).ConfigureAwait(false);
            throw;
        }
        catch (Exception e) when (e is SecureChannelException or OperationCanceledException or IOException)
        {
            var failure = e as SecureChannelException
                ?? (e is IOException
                    ? new SecureChannelException(ChannelErrorCode.ConnectionLost, $"The connection failed before the peer accepted: {e.Message}", e)
                    : new SecureChannelException(ChannelErrorCode.HandshakeTimeout, "The peer did not accept within the handshake timeout.", e));
            Audit(options, ChannelEventKind.Denied, result.Peer, failure.Code, failure.Message);
            await channel.DisposeAsync().ConfigureAwait(false);
            await ReleaseAsync(pipe).ConfigureAwait(false);
            throw failure;
        }

        channel._pump = Task.Run(channel.PumpAsync, CancellationToken.None);
        if (options.Revocations is { } revocations)
        {
            revocations.Changed += channel.OnRevocationsChanged;
        }

        Audit(options, ChannelEventKind.Opened, result.Peer, ChannelErrorCode.Normal, options.Policy?.Text);
        return channel;
    }

    // A connection whose handshake failed is of no further use: both directions end, so the other side
    // (or whoever owns the transport) learns it at once.
    private static async Task ReleaseAsync(IDuplexPipe pipe)
    {
        // The output is completed first: a stream-backed reader disposes its stream when completed, after which
        // the writer's final flush would fail. A transport already dead has nothing left to release.
        try
        {
            await pipe.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Gone already.
        }

        await pipe.Input.CompleteAsync().ConfigureAwait(false);
    }

    // The initiator's first record must be ACCEPT (or the responder's CLOSE with its reason).
    private async Task AwaitAcceptAsync(CancellationToken cancellationToken)
    {
        var reader = _pipe.Input;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled && Volatile.Read(ref _terminated) != 0)
            {
                // Terminate woke this read (the channel failed while waiting, e.g. idle or expired): its reason.
                reader.AdvanceTo(result.Buffer.Start);
                var info = Volatile.Read(ref _closeInfo);
                throw new SecureChannelException(info?.Code ?? ChannelErrorCode.ConnectionLost, info?.Reason ?? "The channel ended before the responder accepted.", info?.FromPeer ?? false);
            }

            var buffer = result.Buffer;
            if (LengthPrefixedFrame.TryRead(ref buffer, out var frame))
            {
                if (frame.Length == ChannelFraming.AbortFrameLength)
                {
                    // The responder could not read message 3 and says so in clear, with only the code.
                    var refused = ChannelFraming.ReadCode(frame.ToArray());
                    reader.AdvanceTo(buffer.Start);
                    throw new SecureChannelException(refused, $"The responder refused the handshake: {refused}.", fromPeer: true);
                }

                if (frame.Length < NoiseConstants.TagLength + ChannelFraming.RecordHeaderLength)
                {
                    reader.AdvanceTo(buffer.Start);
                    throw new SecureChannelException(ChannelErrorCode.ProtocolError, "The responder's first frame is too short to hold a record.");
                }

                var plaintext = new byte[(int)frame.Length - NoiseConstants.TagLength];
                var ok = DecryptRecord(frame, plaintext, out var length);
                reader.AdvanceTo(buffer.Start);
                if (!ok)
                {
                    throw new SecureChannelException(ChannelErrorCode.ProtocolError, "The responder's first record does not decrypt.");
                }

                switch ((RecordType)plaintext[0])
                {
                    case RecordType.Accept when length == ChannelFraming.RecordHeaderLength:
                        _lastReceived = _options.TimeProvider.GetUtcNow();
                        return;
                    case RecordType.Close when length == ChannelFraming.RecordHeaderLength + ChannelFraming.CloseBodyLength:
                        var code = ChannelFraming.ReadCode(plaintext.AsSpan(1));
                        _closeSent = true;
                        throw new SecureChannelException(code, $"The responder refused this side: {code}.", fromPeer: true);
                    default:
                        throw new SecureChannelException(ChannelErrorCode.ProtocolError, "The responder's first record is neither ACCEPT nor CLOSE.");
                }
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw new SecureChannelException(ChannelErrorCode.ConnectionLost, "The connection ended before the responder accepted.");
            }
        }
    }

    private async Task PumpAsync()
    {
        var reader = _pipe.Input;
        var assembly = new MessageAssembly(_options.MaxMessageSize);
        try
        {
            while (true)
            {
                // No token: Terminate wakes this read with CancelPendingRead, a plain result, where a cancelled
                // token would throw through every frame, on every channel's end.
                var result = await reader.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    reader.AdvanceTo(result.Buffer.Start);
                    if (Volatile.Read(ref _terminated) != 0)
                    {
                        return;
                    }

                    continue;
                }

                var buffer = result.Buffer;
                var consumed = buffer.Start;
                try
                {
                    while (LengthPrefixedFrame.TryRead(ref buffer, out var frame))
                    {
                        consumed = buffer.Start;
                        if (!await HandleFrameAsync(frame, assembly).ConfigureAwait(false))
                        {
                            return;
                        }
                    }
                }
                finally
                {
                    reader.AdvanceTo(consumed, buffer.End);
                }

                // One confirmation per batch read, not per message; a busy sender carries it instead (SendAsync).
                TryAcknowledge();

                if (result.IsCompleted)
                {
                    Fail(ChannelErrorCode.ConnectionLost, buffer.IsEmpty ? "The connection ended without a close record." : "The connection ended inside a record.");
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: the reason is already recorded.
        }
        catch (SecureChannelException e)
        {
            Fail(e.Code, e.Message);
        }
        catch (InvalidOperationException e)
        {
            Fail(ChannelErrorCode.ConnectionLost, $"The connection failed: {e.Message}");
        }
        catch (IOException e)
        {
            Fail(ChannelErrorCode.ConnectionLost, $"The connection failed: {e.Message}");
        }
        finally
        {
            assembly.Dispose();
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    // Returns false when the channel ended and the pump must stop.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> HandleFrameAsync(ReadOnlySequence<byte> frame, MessageAssembly assembly)
    {
        if (frame.Length < NoiseConstants.TagLength + ChannelFraming.RecordHeaderLength)
        {
            throw new SecureChannelException(ChannelErrorCode.ProtocolError, "A transport frame is too short to hold a record.");
        }

        // A record is decrypted into a buffer of its own, or, while a message of several records is being
        // assembled, straight behind its earlier bodies (no copy either way).
        var plaintextLength = (int)frame.Length - NoiseConstants.TagLength;
        var ownBuffer = assembly.IsEmpty;
        var (buffer, start) = ownBuffer ? (ArrayPool<byte>.Shared.Rent(plaintextLength), 0) : assembly.ReserveRecord(plaintextLength);
        byte[]? plaintext = ownBuffer ? buffer : null;
        var length = 0;
        try
        {
            if (!DecryptRecord(frame, buffer.AsSpan(start, plaintextLength), out length))
            {
                throw new SecureChannelException(ChannelErrorCode.ProtocolError, "A record failed authentication: altered, reordered, replayed or truncated.");
            }

            var type = (RecordType)buffer[start];
            if (!ownBuffer)
            {
                assembly.ReturnBorrowedByte();
            }

            _lastReceived = _options.TimeProvider.GetUtcNow();
            var bodyStart = start + ChannelFraming.RecordHeaderLength;
            var bodyLength = length - ChannelFraming.RecordHeaderLength;
            switch (type)
            {
                case RecordType.DataMore when ownBuffer:
                    assembly.Adopt(buffer, bodyLength);
                    plaintext = null;
                    return true;
                case RecordType.DataMore:
                    assembly.Commit(bodyLength);
                    return true;
                case RecordType.DataLast:
                    ChannelMessage message;
                    if (ownBuffer)
                    {
                        // A message of one record (any up to 64 KiB) is handed over in the buffer it was decrypted
                        // into.
                        message = assembly.Single(buffer, bodyStart, bodyLength);
                        plaintext = null;
                    }
                    else
                    {
                        assembly.Commit(bodyLength);
                        message = assembly.Complete();
                    }

                    if (_options.MessageFilter is { } filter && !filter(Peer, new ReadOnlySequence<byte>(message.Payload)))
                    {
                        message.Dispose();
                        throw new SecureChannelException(ChannelErrorCode.AccessDenied, "The message filter refused a message from the peer.");
                    }

                    try
                    {
                        await _inbox.Writer.WriteAsync(message, _stopping.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        // Cancelled, or the inbox completed first (ChannelClosedException): the plaintext is wiped.
                        message.Dispose();
                        throw;
                    }

                    Volatile.Write(ref _messagesReceived, _messagesReceived + 1);
                    return true;
                case RecordType.Keepalive when bodyLength == 0:
                    return true;
                case RecordType.Rekey when bodyLength == 0:
                    _transport.RekeyReceiving();
                    Audit(_options, ChannelEventKind.Rekeyed, Peer, ChannelErrorCode.Normal, "receiving");
                    return true;
                case RecordType.CredentialUpdate:
                    AcceptCredentialUpdate(buffer.AsMemory(bodyStart, bodyLength));
                    return true;
                case RecordType.Ack when bodyLength == ChannelFraming.AckBodyLength:
                    AcceptAck(ChannelFraming.ReadCount(buffer.AsSpan(bodyStart, bodyLength)));
                    return true;
                case RecordType.Close when bodyLength == ChannelFraming.CloseBodyLength:
                    var code = ChannelFraming.ReadCode(buffer.AsSpan(bodyStart, bodyLength));
                    if (code == ChannelErrorCode.Normal)
                    {
                        await SendCloseAsync(ChannelErrorCode.Normal, CancellationToken.None).ConfigureAwait(false);
                        Terminate(new ChannelCloseInfo(code, FromPeer: true, "The peer closed the channel."), code, sendClose: false);
                    }
                    else
                    {
                        Terminate(new ChannelCloseInfo(code, FromPeer: true, $"The peer ended the channel: {code}."), code, sendClose: false);
                    }

                    return false;
                default:
                    throw new SecureChannelException(ChannelErrorCode.ProtocolError, $"Unexpected record type 0x{(byte)type:x2} of {bodyLength} bytes.");
            }
        }
        finally
        {
            if (plaintext is not null)
            {
                MessageAssembly.Release(plaintext, length);
            }
        }
    }

    // docs/protocol.md §8.3: a confirmation never goes back and never covers a message not yet sent.
    private void AcceptAck(ulong count)
    {
        // Final once the channel has ended: what Completion reports and MessagesAcknowledged then says stay together.
        if (Volatile.Read(ref _terminated) != 0)
        {
            return;
        }

        var acknowledged = MessagesAcknowledged;
        if (count < (ulong)acknowledged || count > (ulong)MessagesSent)
        {
            throw new SecureChannelException(ChannelErrorCode.ProtocolError, $"An ACK of {count} messages is out of range ({acknowledged} confirmed before, {MessagesSent} sent).");
        }

        if (count == (ulong)acknowledged)
        {
            return;
        }

        Volatile.Write(ref _messagesAcknowledged, (long)count);
        WakeAcknowledgementWaiters();
    }

    private void WakeAcknowledgementWaiters()
    {
        TaskCompletionSource? signal;
        lock (_ackLock)
        {
            (signal, _ackSignal) = (_ackSignal, null);
        }

        signal?.TrySetResult();
    }

    // Under the send lock: an ACK record when messages were accepted since the last one.
    private void WriteAckIfDue()
    {
        var received = MessagesReceived;
        if (received == _receivedAcknowledged || !_options.SendAcknowledgements)
        {
            return;
        }

        ChannelFraming.WriteCount(_ackBody, (ulong)received);
        WriteRecord(RecordType.Ack, new ReadOnlySequence<byte>(_ackBody));
        Volatile.Write(ref _receivedAcknowledged, received);
    }

    // From the pump and the timer, which must never wait for the send lock (a send stuck behind a peer that does not
    // read holds it, and that peer may be waiting for this side's pump): if the lock is busy, its holder or the next
    // tick confirms instead.
    private void TryAcknowledge()
    {
        if (!_options.SendAcknowledgements || MessagesReceived == Volatile.Read(ref _receivedAcknowledged) || Volatile.Read(ref _terminated) != 0 || !_sendLock.Wait(0))
        {
            return;
        }

        try
        {
            if (Volatile.Read(ref _terminated) != 0 || _closeSent)
            {
                _sendLock.Release();
                return;
            }

            WriteAckIfDue();
        }
        catch (InvalidOperationException)
        {
            _sendLock.Release();
            return;
        }

        _ = FlushAndReleaseAsync();
    }

    // docs/protocol.md §8.3: the peer's new chains pass the handshake's checks, keep its principal and satisfy the
    // policy, or the channel ends (the exception closes it with its code). The peer is then replaced whole.
    private void AcceptCredentialUpdate(ReadOnlyMemory<byte> body)
    {
        // A window of one minute from the first update after the last window ended.
        var now = _options.TimeProvider.GetUtcNow();
        if (now - _updateWindowStart >= TimeSpan.FromMinutes(1))
        {
            (_updateWindowStart, _updatesInWindow) = (now, 0);
        }

        if (++_updatesInWindow > _options.MaxCredentialUpdatesPerMinute)
        {
            throw new SecureChannelException(ChannelErrorCode.ProtocolError, $"The peer sent more than {_options.MaxCredentialUpdatesPerMinute} credential updates in a minute.");
        }

        ImmutableArray<byte[]> encoded;
        try
        {
            encoded = CredentialUpdate.Decode(body, _options.MaxCredentialChains);
        }
        catch (WireFormatException e)
        {
            throw new SecureChannelException(ChannelErrorCode.ProtocolError, $"A credential update is malformed: {e.Message}", e);
        }

        var current = Peer;
        var (chains, verified) = PresentedCredentials.Verify(encoded, current.Identifier, _options.Verifier);
        var updated = current.WithCredentials(chains, verified);

        // Whatever this side decided or granted so far was for that principal; the identity alone cannot
        // carry it over to another one (or drop it) mid-channel.
        if (updated.Principal != current.Principal)
        {
            throw new SecureChannelException(ChannelErrorCode.AccessDenied, $"A credential update would change the principal of {current.Identifier} from {current.Principal} to {updated.Principal}.");
        }

        if (!_options.PolicyAllows(updated))
        {
            throw new SecureChannelException(ChannelErrorCode.AccessDenied, $"Access denied after a credential update: the access policy denies {updated}.");
        }

        Volatile.Write(ref _peer, updated);
        Audit(_options, ChannelEventKind.CredentialsUpdated, updated, ChannelErrorCode.Normal, _options.Policy?.Text);

        // A revocation list merged while the chains were being verified was checked against the old ones only.
        Reevaluate();
    }

    private bool DecryptRecord(ReadOnlySequence<byte> frame, Span<byte> plaintext, out int length)
    {
        if (frame.IsSingleSegment)
        {
            return _transport.TryRead(frame.FirstSpan, plaintext, out length);
        }

        var joined = ArrayPool<byte>.Shared.Rent((int)frame.Length);
        try
        {
            frame.CopyTo(joined);
            return _transport.TryRead(joined.AsSpan(0, (int)frame.Length), plaintext, out length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(joined);
        }
    }

    // Encrypts one record straight into the pipe's buffer: the body is copied once, then sealed in place.
    private void WriteRecord(RecordType type, ReadOnlySequence<byte> body)
    {
        var bodyLength = (int)body.Length;
        var span = _pipe.Output.GetSpan(ChannelFraming.FrameLength(bodyLength));
        var record = span.Slice(LengthPrefixedFrame.HeaderLength, ChannelFraming.RecordHeaderLength + bodyLength);
        record[0] = (byte)type;
        body.CopyTo(record[ChannelFraming.RecordHeaderLength..]);
        var length = _transport.Write(record, span[LengthPrefixedFrame.HeaderLength..]);
        LengthPrefixedFrame.WriteHeader(span, length);
        _pipe.Output.Advance(LengthPrefixedFrame.HeaderLength + length);
        _recordsSinceRekey++;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var now = _options.TimeProvider.GetUtcNow();
        if (_recordsSinceRekey >= _options.RekeyAfterMessages || now - _lastRekey >= _options.RekeyAfterTime)
        {
            WriteRecord(RecordType.Rekey, default);
            _transport.RekeySending();
            (_recordsSinceRekey, _lastRekey) = (0, now);
            Audit(_options, ChannelEventKind.Rekeyed, Peer, ChannelErrorCode.Normal, "sending");
        }

        _lastSent = now;
        FlushResult result;
        try
        {
            result = await _pipe.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            // A transport reset under the flush (a socket's send failed): the documented error, not the raw one. As
            // below, the receive pump ends the channel, with the peer's reason if one arrived before the reset.
            throw new SecureChannelException(ChannelErrorCode.ConnectionLost, $"The connection failed: {e.Message}", e);
        }

        if (result.IsCompleted)
        {
            // Not the end of the channel by itself: the peer may have sent a CLOSE with its reason, which the
            // receive pump reads and reports. This send just cannot go through.
            throw new SecureChannelException(ChannelErrorCode.ConnectionLost, "The peer stopped reading.");
        }

        if (result.IsCanceled)
        {
            // Terminate cancels a flush stuck behind a peer that does not read.
            ThrowIfClosed();
        }
    }

    private async Task SendCloseAsync(ChannelErrorCode code, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_closeSent || Volatile.Read(ref _terminated) != 0)
            {
                return;
            }

            _closeSent = true;

            // The last word on what arrived: after its CLOSE a side sends nothing more.
            WriteAckIfDue();
            WriteRecord(RecordType.Close, new ReadOnlySequence<byte>(CloseBody(code)));
            await _pipe.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            // The connection is already gone (completed, or reset under the flush); the close is moot, and the
            // receive pump reports how the channel ended.
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private void OnTick()
    {
        if (Volatile.Read(ref _terminated) != 0)
        {
            return;
        }

        var now = _options.TimeProvider.GetUtcNow();
        if (now - _lastReceived >= _options.IdleTimeout)
        {
            Fail(ChannelErrorCode.IdleTimeout, $"Nothing arrived for {_options.IdleTimeout}.");
            return;
        }

        var peer = Peer;
        if (now >= peer.NotAfter - TimeSpan.FromTicks(1) || peer.Chains.Any(c => c.Credentials.Any(l => now >= l.Credential.NotAfter)))
        {
            Reevaluate();
            if (Volatile.Read(ref _terminated) != 0)
            {
                return;
            }
        }

        // Confirms what a reader accepted after the pump's last batch, when no send carried it.
        TryAcknowledge();
        if (now - _lastSent >= _options.KeepaliveInterval && _sendLock.Wait(0))
        {
            if (_closeSent)
            {
                // After its CLOSE a side sends nothing more.
                _sendLock.Release();
                return;
            }

            try
            {
                WriteRecord(RecordType.Keepalive, default);
                _ = FlushAndReleaseAsync();
            }
            catch (InvalidOperationException)
            {
                _sendLock.Release();
            }
        }
    }

    private async Task FlushAndReleaseAsync()
    {
        try
        {
            await FlushAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or SecureChannelException)
        {
            // A keepalive or an ACK that cannot be sent changes nothing: the receive pump or the idle timer decides
            // how the channel ends (FlushAsync reports a broken or closed connection as SecureChannelException).
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private void OnRevocationsChanged(Identifier authority) => Reevaluate();

    private void Fail(ChannelErrorCode code, string reason) =>
        Terminate(new ChannelCloseInfo(code, FromPeer: false, reason), code, sendClose: true);

    // Ends the channel once: records why, tells the peer (best effort), stops the pump and lets the reader
    // drain what was already accepted before it sees the reason.
    private void Terminate(ChannelCloseInfo info, ChannelErrorCode code, bool sendClose)
    {
        if (Interlocked.Exchange(ref _terminated, 1) != 0)
        {
            return;
        }

        Volatile.Write(ref _closeInfo, info);

        if (_options.Revocations is { } revocations)
        {
            revocations.Changed -= OnRevocationsChanged;
        }

        // A send stuck behind a peer that does not read holds the send lock: release it, then finish the
        // output (the close record, if any, and completion) under the lock, after any send in progress.
        _pipe.Output.CancelPendingFlush();
        _outputFinished = FinishOutputAsync(sendClose ? code : null);

        // Completion first: whoever learns of the end from ReceiveAsync finds Completion already telling how.
        _closed.TrySetResult(info);
        WakeAcknowledgementWaiters();
        _inbox.Writer.TryComplete(code == ChannelErrorCode.Normal ? null : new SecureChannelException(code, info.Reason, info.FromPeer));
        _pipe.Input.CancelPendingRead();
        _stopping.Cancel();
        Audit(_options, ChannelEventKind.Closed, Peer, code, info.Reason);
    }

    private async Task FinishOutputAsync(ChannelErrorCode? closeCode)
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (closeCode is { } code && !_closeSent)
            {
                _closeSent = true;
                WriteAckIfDue();
                WriteRecord(RecordType.Close, new ReadOnlySequence<byte>(CloseBody(code)));
                await _pipe.Output.FlushAsync(_abandonOutput.Token).ConfigureAwait(false);
            }

            await _pipe.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Abandoned (a peer that reads nothing). A stream-backed writer still tries to write what it holds as it
            // completes, and its stream may be gone by now.
            await CompleteOutputQuietlyAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException)
        {
            // The connection is already gone; there is nobody left to tell.
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task CompleteOutputQuietlyAsync()
    {
        try
        {
            await _pipe.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException)
        {
            // The connection is already gone; there is nobody left to tell.
        }
    }

    private static byte[] CloseBody(ChannelErrorCode code)
    {
        var body = new byte[ChannelFraming.CloseBodyLength];
        ChannelFraming.WriteCode(body, code);
        return body;
    }

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _terminated) != 0 || _closeSent)
        {
            var info = Volatile.Read(ref _closeInfo);
            throw new SecureChannelException(info?.Code ?? ChannelErrorCode.Normal, info?.Reason ?? "The channel is closing gracefully.", info?.FromPeer ?? false);
        }
    }

    private static void Audit(SecureChannelOptions options, ChannelEventKind kind, VerifiedPeer? peer, ChannelErrorCode code, string? detail)
    {
        var ids = peer is null ? ImmutableArray<string>.Empty : [.. peer.Credentials.SelectMany(c => c.Hops).Select(h => h.CredentialId)];
        var record = new ChannelEvent(kind, options.TimeProvider.GetUtcNow(), options.Identity.Identifier, peer?.Identifier, peer?.Principal.ToString(), ids, code, detail);
        options.Events?.Invoke(record);
        var logger = options.Logger;
        if (logger.IsEnabled(LogLevel.Information))
        {
            var local = options.Identity.Identifier.ToString();
            var remote = record.PeerIdentifier?.ToString() ?? "(unknown)";
            LogEvent(logger, kind, local, remote, record.Principal ?? "(unknown)", code, detail ?? string.Empty);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Channel {Kind}: local {Local}, peer {Peer} for {Principal}, code {Code}: {Detail}")]
    private static partial void LogEvent(ILogger logger, ChannelEventKind kind, string local, string peer, string principal, ChannelErrorCode code, string detail);
}

/// <summary>How a channel ended.</summary>
/// <param name="Code">The reason code (Normal for a graceful close).</param>
/// <param name="FromPeer">True when the peer ended it.</param>
/// <param name="Reason">The precise reason (local only).</param>
public sealed record ChannelCloseInfo(ChannelErrorCode Code, bool FromPeer, string Reason);
