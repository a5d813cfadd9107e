using System.Diagnostics;
using MessagePack;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Messaging;

namespace SecureChannels.Client.Messaging;

/// <summary>
/// A message received on an <see cref="AgentChannel"/>: bytes, a typed message, or a request to answer. Its body lives
/// in a pooled buffer: read it, then dispose the message. A request disposed without an answer is answered with a
/// FAULT <see cref="MessageFaultCode.Unhandled"/>, so the requester learns at once instead of at its timeout.
/// </summary>
public sealed class AgentMessage : IDisposable
{
    private readonly AgentChannel _channel;
    private readonly ChannelMessage _message;
    private readonly MessageHeader _header;
    private readonly int _bodyOffset;
    private readonly Activity? _serving;
    private int _answered;

    internal AgentMessage(AgentChannel channel, ChannelMessage message, MessageHeader header, int bodyOffset)
    {
        _channel = channel;
        _message = message;
        _header = header;
        _bodyOffset = bodyOffset;
        if (header.Kind == MessageKind.Request)
        {
            _serving = StartServing(header);
        }
        else
        {
            _answered = 1;
        }
    }

    /// <summary>What the message is: <see cref="MessageKind.Bytes"/>, <see cref="MessageKind.Message"/> or <see cref="MessageKind.Request"/>.</summary>
    public MessageKind Kind => _header.Kind;

    /// <summary>The body's type name (typed messages and requests); null for bytes.</summary>
    public string? Type => _header.Type;

    /// <summary>True for a request: answer it with <see cref="RespondAsync{T}"/> or <see cref="FailAsync"/>.</summary>
    public bool IsRequest => _header.Kind == MessageKind.Request;

    /// <summary>How long the requester waits for the answer (requests); answering later is pointless.</summary>
    public TimeSpan Timeout => _header.Timeout;

    /// <summary>
    /// The request's idempotency key: the same in every re-send of one logical request (a channel re-opened with
    /// <see cref="Reopening.Delivery.AtLeastOnce"/>), so a responder can recognise a repeat. Empty for other kinds.
    /// </summary>
    public Guid RequestKey => _header.Key;

    /// <summary>The body: the bytes themselves, or the MessagePack encoding of a typed message. Valid until <see cref="Dispose"/>.</summary>
    public ReadOnlyMemory<byte> Payload => _message.Payload[_bodyOffset..];

    /// <summary>Whether the body is a <typeparamref name="T"/> by name (see <see cref="MessageTypeAttribute"/>).</summary>
    public bool Is<T>() => _header.Type is { } type && string.Equals(type, MessageTypeAttribute.NameOf<T>(), StringComparison.Ordinal);

    /// <summary>The body as a <typeparamref name="T"/>.</summary>
    /// <exception cref="AgentMessageException">The message is bytes, names another type, or its body does not decode as <typeparamref name="T"/>.</exception>
    public T Deserialize<T>()
    {
        if (!Is<T>())
        {
            throw new AgentMessageException($"The message is {(Type is null ? "bytes" : $"of type '{Type}'")}, not '{MessageTypeAttribute.NameOf<T>()}'.");
        }

        try
        {
            return MessagePackSerializer.Deserialize<T>(Payload, _channel.Serializer);
        }
        catch (MessagePackSerializationException e)
        {
            throw new AgentMessageException($"The body of a '{Type}' message does not decode: {e.Message}", e);
        }
    }

    /// <summary>Answers this request with <paramref name="response"/>.</summary>
    /// <exception cref="InvalidOperationException">The message is not a request, or was answered already.</exception>
    /// <exception cref="SecureChannelException">The channel is closed.</exception>
    /// <exception cref="MessagePackSerializationException">The response cannot be serialized; the requester is answered <see cref="MessageFaultCode.Failed"/> instead.</exception>
    public async ValueTask RespondAsync<T>(T response, CancellationToken cancellationToken = default)
    {
        TakeAnswer();
        try
        {
            await _channel.SendTypedAsync(MessageHeader.ForResponse(_header.RequestId, MessageTypeAttribute.NameOf<T>()), response, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MessagePackSerializationException or ArgumentException or OperationCanceledException)
        {
            // Nothing was sent (it could not be encoded, or the wait to send was cancelled): the requester still hears
            // that the request failed, rather than waiting for its timeout.
            _serving?.SetStatus(ActivityStatusCode.Error, nameof(MessageFaultCode.Failed));
            _channel.FaultInBackground(_header.RequestId, MessageFaultCode.Failed, "The response could not be encoded.");
            throw;
        }
        finally
        {
            _serving?.Stop();
        }
    }

    /// <summary>Answers this request with a FAULT: <paramref name="code"/> and a short <paramref name="reason"/> the requester sees (never put a secret in it).</summary>
    /// <exception cref="InvalidOperationException">The message is not a request, or was answered already.</exception>
    /// <exception cref="SecureChannelException">The channel is closed.</exception>
    public async ValueTask FailAsync(MessageFaultCode code, string reason, CancellationToken cancellationToken = default)
    {
        // Checked before the answer is taken: a bad argument must not leave the request unanswered.
        ArgumentNullException.ThrowIfNull(reason);
        ArgumentOutOfRangeException.ThrowIfZero((ushort)code, nameof(code));
        TakeAnswer();
        _serving?.SetStatus(ActivityStatusCode.Error, code.ToString());
        try
        {
            await _channel.SendFaultAsync(_header.RequestId, code, reason, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _serving?.Stop();
        }
    }

    /// <summary>Returns the buffer; an unanswered request is answered <see cref="MessageFaultCode.Unhandled"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _answered, 1) == 0)
        {
            _serving?.SetStatus(ActivityStatusCode.Error, nameof(MessageFaultCode.Unhandled));
            _serving?.Stop();
            _channel.FaultInBackground(_header.RequestId, MessageFaultCode.Unhandled, "The request was not answered.");
        }

        _message.Dispose();
    }

    private void TakeAnswer()
    {
        if (!IsRequest)
        {
            throw new InvalidOperationException("Only a request can be answered.");
        }

        if (Interlocked.Exchange(ref _answered, 1) != 0)
        {
            throw new InvalidOperationException("The request was answered already.");
        }
    }

    // The span of serving a request continues the requester's trace; it is started here, on the channel's receive
    // loop, without becoming that loop's current activity.
    private static Activity? StartServing(MessageHeader header)
    {
        var previous = Activity.Current;
        ActivityContext.TryParse(header.TraceParent, null, isRemote: true, out var parent);
        var activity = Telemetry.ClientTelemetry.Source.StartActivity("securechannels.serve", ActivityKind.Server, parent);
        activity?.SetTag("securechannels.message.type", header.Type);
        Activity.Current = previous;
        return activity;
    }
}

/// <summary>A received message is not what the reader asked for: another type, bytes, or a body that does not decode.</summary>
public sealed class AgentMessageException : Exception
{
    /// <summary>Creates an error.</summary>
    public AgentMessageException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
