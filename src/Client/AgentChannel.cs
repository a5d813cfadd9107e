using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using MessagePack;
using Microsoft.Extensions.Logging;
using SecureChannels.Client.Messaging;
using SecureChannels.Client.Telemetry;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Messaging;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Client;

/// <summary>
/// An end-to-end secure channel between this agent and a peer, over a relay circuit. The relay carries its bytes and
/// cannot read them. It carries bytes, typed messages (MessagePack) and requests with their responses, in one order
/// (docs/protocol.md §11). If the circuit breaks, the channel ends with the reason (<see cref="Completion"/>, and the
/// pending requests fail with it); it is never re-opened behind the caller's back, so no message is silently lost in
/// between (<see cref="Reopening.ReopeningChannel"/> re-opens, with stated delivery guarantees).
/// </summary>
/// <remarks>
/// A receive loop reads the channel all the time: responses go straight to their requests, everything else waits in
/// a queue of <see cref="ReceiveQueueCapacity"/> messages for <see cref="ReceiveAsync"/>. A full queue stops the loop,
/// and with it the responses behind it, so an agent that sends requests also keeps receiving.
/// </remarks>
public sealed partial class AgentChannel : IAsyncDisposable
{
    /// <summary>Messages that wait for <see cref="ReceiveAsync"/> before the loop stops reading the channel (back-pressure reaches the peer).</summary>
    public const int ReceiveQueueCapacity = 64;

    /// <summary>Requests one channel waits for at once; one more fails with <see cref="RequestFailure.TooManyPending"/>.</summary>
    public const int MaxPendingRequests = 1024;

    /// <summary>How long <see cref="DisposeAsync"/> lets already-sent messages leave before it resets the circuit.</summary>
    public static readonly TimeSpan DisposeLinger = TimeSpan.FromSeconds(5);

    private static readonly byte[] BytesKind = [(byte)MessageKind.Bytes];

    private readonly SecureChannel _channel;
    private readonly Circuit _circuit;
    private readonly MessagingSettings _settings;
    private readonly PendingRequests _requests = new(MaxPendingRequests);
    // The queue is bounded by _room rather than by the channel itself: once the secure channel has ended, nothing more
    // can arrive, and what it still holds (at most its own small queue) is taken at once, so the responses among it
    // reach their requests and the requests without one fail now, not after a reader that may never come.
    private readonly Channel<AgentMessage> _inbox = System.Threading.Channels.Channel.CreateUnbounded<AgentMessage>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly SemaphoreSlim _room = new(ReceiveQueueCapacity);
    private readonly CancellationTokenSource _disposing = new();
    private readonly CancellationTokenSource _ended = new();
    private readonly SemaphoreSlim _bytesLock = new(1, 1);
    private readonly BytesSegment _kindSegment = new();
    private readonly BytesSegment _payloadSegment = new();
    private readonly Task _receiveLoop;
    private int _disposed;

    internal AgentChannel(SecureChannel channel, Circuit circuit, MessagingSettings settings)
    {
        _channel = channel;
        _circuit = circuit;
        _settings = settings;
        _ = channel.Completion.ContinueWith(static (_, state) => CancelQuietly((CancellationTokenSource)state!), _ended, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        // The loop outlives whatever span opened or accepted the channel; it must not run as part of it.
        using (ExecutionContext.SuppressFlow())
        {
            _receiveLoop = Task.Run(ReceiveLoopAsync);
        }
    }

    /// <summary>What the handshake proved about the peer: identifier, principal, attributes, delegation hops, expiry.</summary>
    public VerifiedPeer Peer => _channel.Peer;

    /// <summary>The address the circuit was opened to (or, for an incoming channel, the address it reached).</summary>
    public string Address => _circuit.Address;

    /// <summary>The relays the circuit crossed, nearest to the opener first (incoming channels).</summary>
    public IReadOnlyList<string> Via => _circuit.Via;

    /// <summary>The secure channel itself, for what this type does not wrap.</summary>
    public SecureChannel Channel => _channel;

    /// <summary>Completes when the channel ends, with how and why.</summary>
    public Task<ChannelCloseInfo> Completion => _channel.Completion;

    internal MessagePackSerializerOptions Serializer => _settings.Serializer;

    /// <summary>Sends one message of bytes.</summary>
    /// <exception cref="SecureChannelException">The channel is closed (the reason is in the exception), or the message is too large.</exception>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        // The kind byte and the caller's bytes go out as one two-segment message: no copy, and the two segment
        // objects are reused (hence the lock), so a byte message allocates nothing here.
        await _bytesLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _payloadSegment.Set(message, null, 1);
            _kindSegment.Set(BytesKind, _payloadSegment, 0);
            await _channel.SendAsync(new ReadOnlySequence<byte>(_kindSegment, 0, _payloadSegment, message.Length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _payloadSegment.Set(default, null, 0);
            _bytesLock.Release();
        }
    }

    /// <summary>Sends <paramref name="message"/> as a typed message, named by <see cref="MessageTypeAttribute"/> (or its type's full name).</summary>
    /// <exception cref="MessagePackSerializationException">The value's type cannot be serialized.</exception>
    /// <exception cref="SecureChannelException">The channel is closed, or the message is too large.</exception>
    public ValueTask SendMessageAsync<T>(T message, CancellationToken cancellationToken = default) =>
        SendTypedAsync(MessageHeader.ForMessage(MessageTypeAttribute.NameOf<T>()), message, cancellationToken);

    /// <summary>
    /// Sends <paramref name="request"/> and waits for the peer's response (see <see cref="AgentMessage.RespondAsync{T}"/>),
    /// at most <paramref name="timeout"/> (default: <see cref="AgentClientOptions.DefaultRequestTimeout"/>). Delivered at
    /// most once: if the channel ends first, the request fails and is not sent again.
    /// </summary>
    /// <exception cref="AgentRequestException">Timed out, the channel ended first, the peer answered with a fault, the response was not a <typeparamref name="TResponse"/>, or too many requests wait.</exception>
    /// <exception cref="SecureChannelException">The channel was closed when the request was sent.</exception>
    public Task<TResponse> RequestAsync<TRequest, TResponse>(TRequest request, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        RequestWithKeyAsync<TRequest, TResponse>(request, timeout, Guid.NewGuid(), cancellationToken);

    /// <summary>
    /// The next message: bytes, a typed message or a request (responses go to their requests, never here). Null once
    /// the peer closed gracefully. Dispose it after reading.
    /// </summary>
    /// <exception cref="SecureChannelException">The channel ended abnormally (revoked, expired, circuit broken, a malformed message from the peer, ...).</exception>
    public async ValueTask<AgentMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var message = await _inbox.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            _room.Release();
            return message;
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

    /// <summary>Every message until the peer closes gracefully (see <see cref="ReceiveAsync"/>).</summary>
    public async IAsyncEnumerable<AgentMessage> ReceiveAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await ReceiveAsync(cancellationToken).ConfigureAwait(false) is { } message)
        {
            yield return message;
        }
    }

    /// <summary>Closes gracefully, waiting (until <paramref name="cancellationToken"/>) for the peer's close.</summary>
    public Task CloseAsync(CancellationToken cancellationToken = default) => _channel.CloseAsync(cancellationToken);

    /// <summary>
    /// Ends the channel (the peer hears <see cref="ChannelErrorCode.GoingAway"/> after the messages sent before it, for
    /// up to <see cref="DisposeLinger"/>) and releases it. Use <see cref="CloseAsync"/> first for a graceful end.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _disposing.CancelAsync().ConfigureAwait(false);

        // The channel's last messages and its CLOSE may still wait in the channel's output and then in the circuit
        // for credit; disposing either now would overtake them, and a message sent just before disposal would be
        // lost. A peer that stopped reading cannot hold the disposal longer than the linger.
        var closing = _channel.Completion.IsCompleted ? Task.CompletedTask : _channel.AbortAsync(ChannelErrorCode.GoingAway, "The channel was disposed.");
        await LingerAsync(Both(closing, _circuit), _settings.Time).ConfigureAwait(false);
        await _channel.DisposeAsync().ConfigureAwait(false);

        await _receiveLoop.ConfigureAwait(false);
        await _circuit.DisposeAsync().ConfigureAwait(false);
        while (_inbox.Reader.TryRead(out var message))
        {
            message.Dispose();
        }

        _disposing.Dispose();
        _ended.Dispose();
    }

    internal async Task<TResponse> RequestWithKeyAsync<TRequest, TResponse>(TRequest request, TimeSpan? timeout, Guid key, CancellationToken cancellationToken)
    {
        var limit = timeout ?? _settings.DefaultRequestTimeout;
        if (limit < TimeSpan.FromMilliseconds(1) || limit > MessageEnvelope.MaxTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), limit, $"A request timeout is between 1 ms and {MessageEnvelope.MaxTimeout}.");
        }

        var type = MessageTypeAttribute.NameOf<TRequest>();
        using var activity = ClientTelemetry.Source.StartActivity("securechannels.request", ActivityKind.Client);
        activity?.SetTag("securechannels.message.type", type);
        var started = _settings.Time.GetTimestamp();
        var outcome = ClientTelemetry.Outcomes.Failed;
        var (id, answer) = _requests.Add();
        try
        {
            var traceParent = activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;
            await SendTypedAsync(MessageHeader.ForRequest(id, type, limit, key, traceParent), request, cancellationToken).ConfigureAwait(false);
            Reply reply;
            try
            {
                reply = await answer.WaitAsync(limit, _settings.Time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
                if (_requests.Remove(id))
                {
                    if (e is TimeoutException)
                    {
                        outcome = ClientTelemetry.Outcomes.Timeout;
                        throw new AgentRequestException(RequestFailure.TimedOut, $"No response to a '{type}' request within {limit}.");
                    }

                    throw;
                }

                // The answer was handed over as the wait ended: it is here, take it.
                reply = await answer.ConfigureAwait(false);
            }

            using (reply.Message)
            {
                var response = Decode<TResponse>(reply, type);
                outcome = ClientTelemetry.Outcomes.Ok;
                return response;
            }
        }
        catch (AgentRequestException e)
        {
            outcome = e.Failure switch
            {
                RequestFailure.Faulted => ClientTelemetry.Outcomes.Fault,
                RequestFailure.TimedOut => ClientTelemetry.Outcomes.Timeout,
                RequestFailure.ChannelClosed => ClientTelemetry.Outcomes.Lost,
                _ => ClientTelemetry.Outcomes.Failed,
            };
            activity?.SetStatus(ActivityStatusCode.Error, e.Failure.ToString());
            throw;
        }
        finally
        {
            _requests.Remove(id);
            _settings.Telemetry.RequestCompleted(outcome, _settings.Time.GetElapsedTime(started));
        }
    }

    internal async ValueTask SendTypedAsync<T>(MessageHeader header, T value, CancellationToken cancellationToken)
    {
        // A typed message allocates its object anyway; its encoding is written once, header and body together.
        var buffer = new ArrayBufferWriter<byte>(256);
        MessageEnvelope.WriteHeader(buffer, header);
        MessagePackSerializer.Serialize(buffer, value, _settings.Serializer, cancellationToken);
        await _channel.SendAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }

    internal async ValueTask SendFaultAsync(uint requestId, MessageFaultCode code, string reason, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        MessageEnvelope.WriteHeader(buffer, MessageHeader.ForFault(requestId, code, Truncate(reason, MessageEnvelope.MaxReasonLength)));
        await _channel.SendAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }

    // A request the application let go without an answer: tell the requester now rather than at its timeout.
    internal void FaultInBackground(uint requestId, MessageFaultCode code, string reason)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        _ = FaultQuietlyAsync();

        async Task FaultQuietlyAsync()
        {
            try
            {
                await SendFaultAsync(requestId, code, reason, CancellationToken.None).ConfigureAwait(false);
            }
            catch (SecureChannelException)
            {
                // The channel ended meanwhile: the requester learns that instead.
            }
        }
    }

    private TResponse Decode<TResponse>(Reply reply, string requestType)
    {
        if (reply.Header.Kind == MessageKind.Fault)
        {
            throw new AgentRequestException(RequestFailure.Faulted, $"The peer answered the '{requestType}' request with {reply.Header.FaultCode}: {reply.Header.Reason}", reply.Header.FaultCode, faultReason: reply.Header.Reason);
        }

        var expected = MessageTypeAttribute.NameOf<TResponse>();
        if (!string.Equals(reply.Header.Type, expected, StringComparison.Ordinal))
        {
            throw new AgentRequestException(RequestFailure.BadResponse, $"The response to a '{requestType}' request is a '{reply.Header.Type}', not a '{expected}'.");
        }

        try
        {
            return MessagePackSerializer.Deserialize<TResponse>(reply.Message.Payload[reply.BodyOffset..], _settings.Serializer);
        }
        catch (MessagePackSerializationException e)
        {
            throw new AgentRequestException(RequestFailure.BadResponse, $"The '{expected}' response does not decode: {e.Message}", innerException: e);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var ended = new ChannelCloseInfo(ChannelErrorCode.Normal, FromPeer: true, "The peer closed the channel.");
        SecureChannelException? failure = null;
        using var noMoreComing = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token, _ended.Token);
        try
        {
            while (await _channel.ReceiveAsync(_disposing.Token).ConfigureAwait(false) is { } received)
            {
                MessageHeader header;
                int bodyOffset;
                try
                {
                    header = MessageEnvelope.ReadHeader(received.Payload, out bodyOffset);
                }
                catch (WireFormatException e)
                {
                    // A peer that breaks the message layer is cut, as the channel cuts one that breaks its records.
                    received.Dispose();
                    LogMalformed(_settings.Logger, Peer.Identifier, e.Kind);
                    var reason = $"A malformed agent message: {e.Message}";

                    // Not awaited: the CLOSE may wait behind output a hostile peer never takes, and this loop must
                    // still fail the requests and end the queue now. AbortAsync's task never faults.
                    _ = _channel.AbortAsync(ChannelErrorCode.ProtocolError, reason);

                    // The channel's own account (set as it terminated): had it ended already, that end stands.
                    ended = await _channel.Completion.ConfigureAwait(false);
                    failure = new SecureChannelException(ended.Code, ended.Reason, ended.FromPeer);
                    break;
                }

                if (header.Kind is MessageKind.Response or MessageKind.Fault)
                {
                    if (!_requests.Complete(new Reply(header, received, bodyOffset)))
                    {
                        _settings.Telemetry.UnmatchedResponse();
                        received.Dispose();
                    }

                    continue;
                }

                var message = new AgentMessage(this, received, header, bodyOffset);
                try
                {
                    await _room.WaitAsync(noMoreComing.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!_disposing.IsCancellationRequested)
                {
                    // The channel ended: take the rest without waiting for room.
                }
                catch (OperationCanceledException)
                {
                    message.Dispose();
                    throw;
                }

                _inbox.Writer.TryWrite(message);
            }
        }
        catch (SecureChannelException e)
        {
            failure = e;
            ended = new ChannelCloseInfo(e.Code, e.FromPeer, e.Message);
        }
        catch (OperationCanceledException)
        {
            ended = new ChannelCloseInfo(ChannelErrorCode.GoingAway, FromPeer: false, "The channel was disposed.");
            failure = new SecureChannelException(ChannelErrorCode.GoingAway, ended.Reason);
        }
        finally
        {
            _requests.Close(ended);
            _inbox.Writer.TryComplete(failure);
        }
    }

    /// <summary>The CLOSE handed to the circuit, then the circuit's last bytes sent: one wait, so one linger.</summary>
    internal static async Task Both(Task closing, Circuit circuit)
    {
        await closing.ConfigureAwait(false);
        await circuit.Sent.ConfigureAwait(false);
    }

    /// <summary>Waits for what is being sent to leave, at most <see cref="DisposeLinger"/>.</summary>
    internal static async Task LingerAsync(Task sending, TimeProvider time)
    {
        try
        {
            await sending.WaitAsync(DisposeLinger, time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Given up: what is still queued is dropped with the circuit.
        }
    }

    // The channel's completion runs its continuations asynchronously: this one may come after DisposeAsync.
    private static void CancelQuietly(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed already: nobody waits on it any more.
        }
    }

    private static string Truncate(string text, int maxBytes)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(text) <= maxBytes)
        {
            return text;
        }

        // Cut on a character boundary, never inside a UTF-8 sequence.
        var length = Math.Min(text.Length, maxBytes);
        while (System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(0, length)) > maxBytes)
        {
            length--;
        }

        if (length > 0 && char.IsHighSurrogate(text[length - 1]))
        {
            length--;
        }

        return text[..length];
    }

    [LoggerMessage(EventId = 70, Level = LogLevel.Warning, Message = "Channel with {Peer} cut: the peer sent a malformed agent message ({Kind})")]
    private static partial void LogMalformed(ILogger logger, Protocol.Identity.Identifier peer, WireErrorKind kind);

    private sealed class BytesSegment : ReadOnlySequenceSegment<byte>
    {
        public void Set(ReadOnlyMemory<byte> memory, BytesSegment? next, long runningIndex)
        {
            Memory = memory;
            Next = next;
            RunningIndex = runningIndex;
        }
    }
}

/// <summary>What every channel of one agent shares for its message layer.</summary>
internal sealed record MessagingSettings(MessagePackSerializerOptions Serializer, TimeSpan DefaultRequestTimeout, TimeProvider Time, ClientTelemetry Telemetry, ILogger Logger);
