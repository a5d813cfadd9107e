using System.Buffers;
using System.Text;
using MessagePack;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Messaging;

/// <summary>What an agent message is: its first byte (docs/protocol.md §11.1).</summary>
public enum MessageKind : byte
{
    /// <summary>Application bytes, nothing else: the rest of the message.</summary>
    Bytes = 0,

    /// <summary>A typed one-way message: <c>[type]</c>, then its MessagePack body.</summary>
    Message = 1,

    /// <summary>A request: <c>[request_id, type, timeout_ms, key, traceparent]</c>, then its MessagePack body.</summary>
    Request = 2,

    /// <summary>The answer to a request: <c>[request_id, type]</c>, then its MessagePack body.</summary>
    Response = 3,

    /// <summary>A request that failed: <c>[request_id, code, reason]</c>, nothing after.</summary>
    Fault = 4,
}

/// <summary>Why a responder answered a request with a FAULT (u16 on the wire, docs/protocol.md §11.3).</summary>
public enum MessageFaultCode : ushort
{
    /// <summary>The responder serves no request of that type (or let the request go unanswered).</summary>
    Unhandled = 1,

    /// <summary>The request's body is not a valid value of the type it names.</summary>
    BadRequest = 2,

    /// <summary>The responder's handler failed; the precise reason stays with the responder.</summary>
    Failed = 3,

    /// <summary>The responder gave up when the request's timeout passed.</summary>
    Timeout = 4,

    /// <summary>The responder has too many requests in flight.</summary>
    Overloaded = 5,
}

/// <summary>
/// The header of one agent message: the kind byte and, for typed kinds, a canonical MessagePack array. The fields a
/// kind does not carry are left at their defaults.
/// </summary>
/// <param name="Kind">What the message is.</param>
/// <param name="RequestId">The request it is or answers (1 to 2^32-1); 0 for BYTES and MESSAGE.</param>
/// <param name="Type">The body's type name (MESSAGE, REQUEST, RESPONSE).</param>
/// <param name="Timeout">How long the requester waits (REQUEST).</param>
/// <param name="Key">The request's idempotency key, the same in every re-send of one logical request (REQUEST).</param>
/// <param name="TraceParent">The requester's W3C <c>traceparent</c>, when it traces (REQUEST).</param>
/// <param name="FaultCode">Why the request failed (FAULT).</param>
/// <param name="Reason">A short human-readable reason (FAULT); never a secret.</param>
public readonly record struct MessageHeader(
    MessageKind Kind,
    uint RequestId = 0,
    string? Type = null,
    TimeSpan Timeout = default,
    Guid Key = default,
    string? TraceParent = null,
    MessageFaultCode FaultCode = 0,
    string? Reason = null)
{
    /// <summary>The header of a BYTES message.</summary>
    public static MessageHeader ForBytes() => new(MessageKind.Bytes);

    /// <summary>The header of a typed one-way message.</summary>
    public static MessageHeader ForMessage(string type) => new(MessageKind.Message, Type: type);

    /// <summary>The header of a request.</summary>
    public static MessageHeader ForRequest(uint requestId, string type, TimeSpan timeout, Guid key, string? traceParent) =>
        new(MessageKind.Request, requestId, type, timeout, key, traceParent);

    /// <summary>The header of a response.</summary>
    public static MessageHeader ForResponse(uint requestId, string type) => new(MessageKind.Response, requestId, type);

    /// <summary>The header of a fault.</summary>
    public static MessageHeader ForFault(uint requestId, MessageFaultCode code, string reason) =>
        new(MessageKind.Fault, requestId, FaultCode: code, Reason: reason);
}

/// <summary>
/// Encodes and decodes agent message headers (docs/protocol.md §11). An agent message is one application message of a
/// secure channel: <c>kind: u8 || header || body</c>. Decoding accepts only the canonical encoding, with every limit
/// checked, and reports anything else as a <see cref="WireFormatException"/>.
/// </summary>
public static class MessageEnvelope
{
    /// <summary>The longest type name, in UTF-8 bytes: names say what a body is, they do not carry data.</summary>
    public const int MaxTypeLength = 128;

    /// <summary>The longest fault reason, in UTF-8 bytes.</summary>
    public const int MaxReasonLength = 256;

    /// <summary>The longest <c>traceparent</c> (a W3C version-00 one is 55 characters).</summary>
    public const int MaxTraceParentLength = 64;

    /// <summary>The longest request timeout: a day. A longer wait is a job, not a request.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromDays(1);

    private const string Structure = "agent message";

    /// <summary>Writes the kind byte and the header of <paramref name="header"/>; the body follows.</summary>
    /// <exception cref="ArgumentException">A field is out of its range (an empty or too long type, a zero request id, ...).</exception>
    public static void WriteHeader(IBufferWriter<byte> output, in MessageHeader header)
    {
        ArgumentNullException.ThrowIfNull(output);
        Validate(header);
        var kind = output.GetSpan(1);
        kind[0] = (byte)header.Kind;
        output.Advance(1);
        if (header.Kind == MessageKind.Bytes)
        {
            return;
        }

        var writer = new MessagePackWriter(output) { OldSpec = false };
        switch (header.Kind)
        {
            case MessageKind.Message:
                writer.WriteArrayHeader(1);
                writer.Write(header.Type);
                break;
            case MessageKind.Request:
                writer.WriteArrayHeader(5);
                writer.Write(header.RequestId);
                writer.Write(header.Type);
                writer.Write((ulong)header.Timeout.TotalMilliseconds);
                writer.Write(header.Key.ToByteArray(bigEndian: true));
                if (header.TraceParent is null)
                {
                    writer.WriteNil();
                }
                else
                {
                    writer.Write(header.TraceParent);
                }

                break;
            case MessageKind.Response:
                writer.WriteArrayHeader(2);
                writer.Write(header.RequestId);
                writer.Write(header.Type);
                break;
            default:
                writer.WriteArrayHeader(3);
                writer.Write(header.RequestId);
                writer.Write((ushort)header.FaultCode);
                writer.Write(header.Reason);
                break;
        }

        writer.Flush();
    }

    /// <summary>Decodes the header at the start of <paramref name="message"/>; the body starts at <paramref name="bodyOffset"/>.</summary>
    /// <exception cref="WireFormatException">The message is empty, of an unknown kind, malformed, over a limit, or not canonical.</exception>
    public static MessageHeader ReadHeader(ReadOnlyMemory<byte> message, out int bodyOffset)
    {
        if (message.IsEmpty)
        {
            throw new WireFormatException(WireErrorKind.Truncated, $"{Structure}: an empty message has no kind.");
        }

        var kind = (MessageKind)message.Span[0];
        if (kind == MessageKind.Bytes)
        {
            bodyOffset = 1;
            return MessageHeader.ForBytes();
        }

        var encoded = message[1..];
        var reader = new CanonicalReader(encoded, Structure);
        var header = kind switch
        {
            MessageKind.Message => ReadMessage(ref reader),
            MessageKind.Request => ReadRequest(ref reader),
            MessageKind.Response => ReadResponse(ref reader),
            MessageKind.Fault => ReadFault(ref reader),
            _ => throw new WireFormatException(WireErrorKind.Malformed, $"{Structure}: unknown kind 0x{(byte)kind:x2}."),
        };
        var length = checked((int)reader.Consumed);
        if (kind == MessageKind.Fault)
        {
            reader.EnsureEnd();
        }

        // One header, one encoding: re-encode it and require the same bytes, as for every signed structure (§4).
        var canonical = new ArrayBufferWriter<byte>(length + 1);
        WriteHeader(canonical, header);
        if (!canonical.WrittenSpan[1..].SequenceEqual(encoded.Span[..length]))
        {
            throw new WireFormatException(WireErrorKind.NonCanonical, $"{Structure}: the header is valid but not canonical.");
        }

        bodyOffset = 1 + length;
        return header;
    }

    private static MessageHeader ReadMessage(ref CanonicalReader reader)
    {
        reader.ReadArray("header", 1, 1);
        return MessageHeader.ForMessage(ReadType(ref reader));
    }

    private static MessageHeader ReadRequest(ref CanonicalReader reader)
    {
        reader.ReadArray("header", 5, 5);
        var id = ReadRequestId(ref reader);
        var type = ReadType(ref reader);
        var timeoutMs = reader.ReadUnsigned("timeout_ms");
        if (timeoutMs == 0 || timeoutMs > (ulong)MaxTimeout.TotalMilliseconds)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{Structure}: timeout_ms {timeoutMs} is outside 1 to {(ulong)MaxTimeout.TotalMilliseconds}.");
        }

        var key = new Guid(reader.ReadBytes("key", 16), bigEndian: true);
        var traceParent = reader.TryReadNil("traceparent") ? null : ReadText(ref reader, "traceparent", MaxTraceParentLength, allowEmpty: false);
        return MessageHeader.ForRequest(id, type, TimeSpan.FromMilliseconds(timeoutMs), key, traceParent);
    }

    private static MessageHeader ReadResponse(ref CanonicalReader reader)
    {
        reader.ReadArray("header", 2, 2);
        var id = ReadRequestId(ref reader);
        return MessageHeader.ForResponse(id, ReadType(ref reader));
    }

    private static MessageHeader ReadFault(ref CanonicalReader reader)
    {
        reader.ReadArray("header", 3, 3);
        var id = ReadRequestId(ref reader);
        var code = reader.ReadUnsigned("code");
        if (code is 0 or > ushort.MaxValue)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{Structure}: fault code {code} is outside 1 to 65535.");
        }

        return MessageHeader.ForFault(id, (MessageFaultCode)code, ReadText(ref reader, "reason", MaxReasonLength, allowEmpty: true));
    }

    private static uint ReadRequestId(ref CanonicalReader reader)
    {
        var id = reader.ReadUnsigned("request_id");
        if (id is 0 or > uint.MaxValue)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{Structure}: request_id {id} is outside 1 to 2^32-1.");
        }

        return (uint)id;
    }

    private static string ReadType(ref CanonicalReader reader) => ReadText(ref reader, "type", MaxTypeLength, allowEmpty: false);

    private static string ReadText(ref CanonicalReader reader, string field, int maxBytes, bool allowEmpty)
    {
        var text = reader.ReadText(field, maxBytes);
        if (!allowEmpty && text.Length == 0)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"{Structure}: {field} is empty.");
        }

        return text;
    }

    private static void Validate(in MessageHeader header)
    {
        switch (header.Kind)
        {
            case MessageKind.Bytes:
                return;
            case MessageKind.Message:
                CheckType(header.Type);
                return;
            case MessageKind.Request:
                CheckRequestId(header.RequestId);
                CheckType(header.Type);
                if (header.Timeout < TimeSpan.FromMilliseconds(1) || header.Timeout > MaxTimeout)
                {
                    throw new ArgumentException($"A request timeout must be between 1 ms and {MaxTimeout}.", nameof(header));
                }

                if (header.TraceParent is { } trace && (trace.Length == 0 || Encoding.UTF8.GetByteCount(trace) > MaxTraceParentLength))
                {
                    throw new ArgumentException($"A traceparent must be 1 to {MaxTraceParentLength} bytes.", nameof(header));
                }

                return;
            case MessageKind.Response:
                CheckRequestId(header.RequestId);
                CheckType(header.Type);
                return;
            case MessageKind.Fault:
                CheckRequestId(header.RequestId);
                if (header.FaultCode == 0 || header.Reason is null || Encoding.UTF8.GetByteCount(header.Reason) > MaxReasonLength)
                {
                    throw new ArgumentException($"A fault needs a non-zero code and a reason of at most {MaxReasonLength} bytes.", nameof(header));
                }

                return;
            default:
                throw new ArgumentException($"Unknown message kind {header.Kind}.", nameof(header));
        }
    }

    private static void CheckRequestId(uint id)
    {
        if (id == 0)
        {
            throw new ArgumentException("Request id 0 is reserved.", nameof(id));
        }
    }

    private static void CheckType(string? type)
    {
        if (string.IsNullOrEmpty(type) || Encoding.UTF8.GetByteCount(type) > MaxTypeLength)
        {
            throw new ArgumentException($"A type name must be 1 to {MaxTypeLength} UTF-8 bytes.", nameof(type));
        }
    }
}
