using System.Buffers;
using System.Globalization;
using System.Text;
using CsCheck;
using MessagePack;
using SecureChannels.Protocol.Messaging;
using SecureChannels.Protocol.Tests.Docs;
using SecureChannels.Protocol.Tests.Wire;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Tests.Messaging;

/// <summary>
/// docs/protocol.md §11: every kind of agent message round-trips with its body untouched, the worked example of §11.7 is
/// byte for byte what the code writes, and each hand-made malformed, oversized, non-canonical, truncated or trailing
/// header is refused with the documented <see cref="WireErrorKind"/>.
/// </summary>
public sealed class MessageEnvelopeTests
{
    internal const string QuoteType = "billing.quote.v1";
    internal const string TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    internal static readonly Guid Key = new("00112233-4455-6677-8899-aabbccddeeff");
    internal static readonly byte[] KeyBytes = Convert.FromHexString("00112233445566778899aabbccddeeff");

    /// <summary>The MessagePack encoding of <c>[3, "A-1"]</c>: a body the application's serializer could write.</summary>
    internal static readonly byte[] QuoteBody = [0x92, 0x03, 0xa3, (byte)'A', (byte)'-', (byte)'1'];

    internal static byte[] Encode(in MessageHeader header, ReadOnlySpan<byte> body = default)
    {
        var buffer = new ArrayBufferWriter<byte>();
        MessageEnvelope.WriteHeader(buffer, header);
        buffer.Write(body);
        return buffer.WrittenSpan.ToArray();
    }

    private static WireErrorKind Refused(byte[] message) =>
        Assert.Throws<WireFormatException>(() => MessageEnvelope.ReadHeader(message, out _)).Kind;

    private static MessageHeader Decoded(byte[] message, out int bodyOffset) => MessageEnvelope.ReadHeader(message, out bodyOffset);

    private static string Repeat(string text, int count) => string.Concat(Enumerable.Repeat(text, count));

    // ----- Hand-made headers: each argument replaces one field's writer. -----

    private static Msg.Writer Uint(ulong value) => (ref MessagePackWriter w) => w.Write(value);

    private static Msg.Writer Str(string text) => (ref MessagePackWriter w) => w.Write(text);

    private static Msg.Writer Raw(string hex) => (ref MessagePackWriter w) => w.WriteRaw(Convert.FromHexString(hex));

    private static Msg.Writer StrBytes(params byte[] utf8) => (ref MessagePackWriter w) => Msg.WriteStrBytes(ref w, utf8);

    private static Msg.Writer Bin(byte[] bytes) => (ref MessagePackWriter w) => w.Write(bytes);

    private static readonly Msg.Writer Nil = (ref MessagePackWriter w) => w.WriteNil();

    /// <summary>
    /// <paramref name="kind"/>, then an array header of <paramref name="count"/> (default: the number of fields), then
    /// the fields; when <paramref name="count"/> is larger, nils fill the extra elements, when smaller, fields are left
    /// out.
    /// </summary>
    private static byte[] Header(MessageKind kind, Msg.Writer[] fields, int? count = null, Msg.Writer? arrayHeader = null) =>
        [(byte)kind, .. Msg.Build((ref MessagePackWriter w) =>
        {
            var elements = count ?? fields.Length;
            if (arrayHeader is null)
            {
                w.WriteArrayHeader(elements);
            }
            else
            {
                arrayHeader(ref w);
            }

            for (var i = 0; i < elements; i++)
            {
                (i < fields.Length ? fields[i] : Nil)(ref w);
            }
        })];

    private static byte[] MessageBytes(Msg.Writer? type = null, int? count = null) =>
        Header(MessageKind.Message, [type ?? Str(QuoteType)], count);

    private static byte[] RequestBytes(
        Msg.Writer? id = null,
        Msg.Writer? type = null,
        Msg.Writer? timeout = null,
        Msg.Writer? key = null,
        Msg.Writer? trace = null,
        int? count = null,
        Msg.Writer? arrayHeader = null) =>
        Header(MessageKind.Request, [id ?? Uint(7), type ?? Str(QuoteType), timeout ?? Uint(30_000), key ?? Bin(KeyBytes), trace ?? Str(TraceParent)], count, arrayHeader);

    private static byte[] ResponseBytes(Msg.Writer? id = null, Msg.Writer? type = null, int? count = null) =>
        Header(MessageKind.Response, [id ?? Uint(7), type ?? Str("billing.price.v1")], count);

    private static byte[] FaultBytes(Msg.Writer? id = null, Msg.Writer? code = null, Msg.Writer? reason = null, int? count = null) =>
        Header(MessageKind.Fault, [id ?? Uint(7), code ?? Uint(1), reason ?? Str("The request was not answered.")], count);

    // ----- Round trips -----

    /// <summary>One header of each kind (and the edges of each), with the body sent after it.</summary>
    internal static readonly Dictionary<string, (MessageHeader Header, byte[] Body)> Samples = new()
    {
        ["bytes"] = (MessageHeader.ForBytes(), "hello"u8.ToArray()),
        ["bytes that look like a request header"] = (MessageHeader.ForBytes(), RequestBytes()),
        ["empty bytes"] = (MessageHeader.ForBytes(), []),
        ["message"] = (MessageHeader.ForMessage("billing.paid.v1"), [0x91, 0x2a]),
        ["message with an empty body"] = (MessageHeader.ForMessage("x"), []),
        ["request"] = (MessageHeader.ForRequest(7, QuoteType, TimeSpan.FromSeconds(30), Key, TraceParent), QuoteBody),
        ["request without traceparent"] = (MessageHeader.ForRequest(300, QuoteType, TimeSpan.FromDays(1), Key, null), QuoteBody),
        ["request at the limits"] = (MessageHeader.ForRequest(uint.MaxValue, Repeat("é", 64), TimeSpan.FromMilliseconds(1), Guid.Empty, new string('t', 64)), [0xc0]),
        ["response"] = (MessageHeader.ForResponse(7, "billing.price.v1"), [0x92, 0xcd, 0x04, 0xb0, 0xa3, (byte)'E', (byte)'U', (byte)'R']),
        ["response with a 128-byte type"] = (MessageHeader.ForResponse(65_536, new string('r', 128)), [0x2a]),
        ["fault"] = (MessageHeader.ForFault(7, MessageFaultCode.Unhandled, "The request was not answered."), []),
        ["fault with an unknown code and an empty reason"] = (MessageHeader.ForFault(1, (MessageFaultCode)ushort.MaxValue, ""), []),
        ["fault with a 256-byte reason"] = (MessageHeader.ForFault(uint.MaxValue, MessageFaultCode.Overloaded, Repeat("€", 85) + "x"), []),
    };

    public static TheoryData<string> SampleNames { get; } = [.. Samples.Keys];

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void EveryKindRoundTripsAndLeavesTheBodyUntouched(string name)
    {
        var (header, body) = Samples[name];
        var headerLength = Encode(header).Length;
        var message = Encode(header, body);

        var decoded = Decoded(message, out var bodyOffset);

        Assert.Equal(header, decoded);
        Assert.Equal(headerLength, bodyOffset);
        Assert.Equal((byte)header.Kind, message[0]);
        Assert.Equal(body, message[bodyOffset..]);
        Assert.Equal(message[..bodyOffset], Encode(decoded));
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void AMessageInsideALargerBufferDecodesFromItsOwnStart(string name)
    {
        // Received messages live in pooled buffers: the header is read from the slice, never from the buffer's start.
        var (header, body) = Samples[name];
        var message = Encode(header, body);
        var buffer = new byte[message.Length + 7];
        buffer.AsSpan().Fill(0xc1);
        message.CopyTo(buffer, 3);
        var slice = buffer.AsMemory(3, message.Length);

        var decoded = MessageEnvelope.ReadHeader(slice, out var bodyOffset);

        Assert.Equal(header, decoded);
        Assert.Equal(body, slice[bodyOffset..].ToArray());
    }

    [Fact]
    public void BytesHaveNoHeaderWhateverFollowsTheKind()
    {
        Assert.Equal(MessageHeader.ForBytes(), Decoded([0x00], out var emptyOffset));
        Assert.Equal(1, emptyOffset);
        Assert.Equal(MessageHeader.ForBytes(), Decoded([0x00, 0xc1, 0xff, 0x95], out var offset));
        Assert.Equal(1, offset);
        Assert.Equal([0x00], Encode(MessageHeader.ForBytes()));
    }

    [Fact]
    public void TheBodyIsNotCheckedByTheEnvelope()
    {
        // A MESSAGE, REQUEST or RESPONSE header may be followed by anything, even nothing: the body is the application
        // serializer's business, and a body that does not decode fails there, not here.
        var request = RequestBytes();
        Assert.Equal(MessageKind.Request, Decoded(request, out var requestOffset).Kind);
        Assert.Equal(request.Length, requestOffset);
        Assert.Equal(MessageKind.Request, Decoded([.. request, 0xc1, 0xc1], out var offset).Kind);
        Assert.Equal(request.Length, offset);
        Assert.Equal(MessageKind.Response, Decoded([.. ResponseBytes(), 0xc1], out _).Kind);
        Assert.Equal(MessageKind.Message, Decoded(MessageBytes(), out _).Kind);
    }

    [Fact]
    public void ATimeoutIsSentInWholeMillisecondsRoundedDown()
    {
        var header = MessageHeader.ForRequest(7, QuoteType, TimeSpan.FromTicks(19_999), Key, null);

        var decoded = Decoded(Encode(header), out _);

        Assert.Equal(TimeSpan.FromMilliseconds(1), decoded.Timeout);
    }

    // ----- Exact bytes (docs/protocol.md §11.7) -----

    [Fact]
    public void TheRequestIsExactlyTheseBytes()
    {
        var expected = Msg.Concat(
            [0x02, 0x95, 0x07],
            [0xb0, .. Encoding.UTF8.GetBytes(QuoteType)],
            [0xcd, 0x75, 0x30],
            [0xc4, 0x10, .. KeyBytes],
            [0xd9, 0x37, .. Encoding.UTF8.GetBytes(TraceParent)],
            QuoteBody);

        Assert.Equal(expected, Encode(Samples["request"].Header, QuoteBody));
        Assert.Equal(98, expected.Length - QuoteBody.Length);
    }

    [Fact]
    public void TheFaultIsExactlyTheseBytes()
    {
        var expected = Msg.Concat([0x04, 0x93, 0x07, 0x01, 0xbd], Encoding.UTF8.GetBytes("The request was not answered."));

        Assert.Equal(expected, Encode(Samples["fault"].Header));
    }

    [Fact]
    public void TheKeyIsTheUuidInBigEndianOrder()
    {
        // RFC 9562 byte order, as printed: not .NET's mixed-endian Guid.ToByteArray().
        var message = Encode(Samples["request"].Header);

        Assert.Equal(KeyBytes, message.AsSpan(25, 16).ToArray());
        Assert.NotEqual(Key.ToByteArray(), KeyBytes);
    }

    // ----- Refusals -----

    [Fact]
    public void AnEmptyMessageIsTruncated() => Assert.Equal(WireErrorKind.Truncated, Refused([]));

    [Theory]
    [InlineData(new byte[] { 0x05 })]
    [InlineData(new byte[] { 0x05, 0x91, 0xa1, 0x78 })]
    [InlineData(new byte[] { 0x7f, 0x90 })]
    [InlineData(new byte[] { 0xff })]
    public void AnUnknownKindIsMalformed(byte[] message) => Assert.Equal(WireErrorKind.Malformed, Refused(message));

    public static TheoryData<string> HeaderKinds { get; } = ["message", "request", "request without traceparent", "response", "fault"];

    [Theory]
    [MemberData(nameof(HeaderKinds))]
    public void EveryCutOfAHeaderIsTruncated(string name)
    {
        var header = Encode(Samples[name].Header);

        for (var length = 0; length < header.Length; length++)
        {
            var error = Record.Exception(() => MessageEnvelope.ReadHeader(header.AsMemory(0, length), out _));
            var wire = Assert.IsType<WireFormatException>(error);
            Assert.True(wire.Kind == WireErrorKind.Truncated, $"{name} cut to {length} bytes: {wire.Kind}");
        }
    }

    public static TheoryData<string, byte[], WireErrorKind> WrongArrays => new()
    {
        { "MESSAGE of 0", MessageBytes(count: 0), WireErrorKind.Malformed },
        { "MESSAGE of 2", MessageBytes(count: 2), WireErrorKind.TooLarge },
        { "REQUEST of 4", RequestBytes(count: 4), WireErrorKind.Malformed },
        { "REQUEST of 6", RequestBytes(count: 6), WireErrorKind.TooLarge },
        { "RESPONSE of 1", ResponseBytes(count: 1), WireErrorKind.Malformed },
        { "RESPONSE of 3", ResponseBytes(count: 3), WireErrorKind.TooLarge },
        { "FAULT of 2", FaultBytes(count: 2), WireErrorKind.Malformed },
        { "FAULT of 4", FaultBytes(count: 4), WireErrorKind.TooLarge },
        { "REQUEST header is a map", [0x02, 0x80], WireErrorKind.Malformed },
        { "REQUEST header is nil", [0x02, 0xc0], WireErrorKind.Malformed },
        { "MESSAGE header is a string", [0x01, 0xa1, 0x78], WireErrorKind.Malformed },
    };

    [Theory]
    [MemberData(nameof(WrongArrays))]
    public void AHeaderArrayOfTheWrongLengthIsRefused(string why, byte[] message, WireErrorKind expected) =>
        Assert.True(Refused(message) == expected, why);

    public static TheoryData<string, byte[]> RequestIdsOutOfRange => new()
    {
        { "REQUEST 0", RequestBytes(id: Uint(0)) },
        { "REQUEST 2^32", RequestBytes(id: Uint(1UL << 32)) },
        { "REQUEST 2^64-1", RequestBytes(id: Uint(ulong.MaxValue)) },
        { "REQUEST -1", RequestBytes(id: (ref MessagePackWriter w) => w.Write(-1)) },
        { "REQUEST id is a string", RequestBytes(id: Str("7")) },
        { "RESPONSE 0", ResponseBytes(id: Uint(0)) },
        { "RESPONSE 2^32", ResponseBytes(id: Uint(1UL << 32)) },
        { "FAULT 0", FaultBytes(id: Uint(0)) },
        { "FAULT 2^32", FaultBytes(id: Uint(1UL << 32)) },
    };

    [Theory]
    [MemberData(nameof(RequestIdsOutOfRange))]
    public void ARequestIdOutsideOneTo2Pow32Minus1IsMalformed(string why, byte[] message) =>
        Assert.True(Refused(message) == WireErrorKind.Malformed, why);

    [Fact]
    public void RequestIdsAtTheirLimitsDecode()
    {
        Assert.Equal(1u, Decoded(RequestBytes(id: Uint(1)), out _).RequestId);
        Assert.Equal(uint.MaxValue, Decoded(RequestBytes(id: Uint(uint.MaxValue)), out _).RequestId);
        Assert.Equal(uint.MaxValue, Decoded(FaultBytes(id: Uint(uint.MaxValue)), out _).RequestId);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(86_400_001UL)]
    [InlineData(ulong.MaxValue)]
    public void ATimeoutOutsideOneMillisecondToADayIsMalformed(ulong timeoutMs) =>
        Assert.Equal(WireErrorKind.Malformed, Refused(RequestBytes(timeout: Uint(timeoutMs))));

    [Fact]
    public void TimeoutsAtTheirLimitsDecode()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(1), Decoded(RequestBytes(timeout: Uint(1)), out _).Timeout);
        Assert.Equal(MessageEnvelope.MaxTimeout, Decoded(RequestBytes(timeout: Uint(86_400_000)), out _).Timeout);
    }

    [Fact]
    public void AnEmptyOrNilTypeIsMalformed()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(MessageBytes(type: Str(""))));
        Assert.Equal(WireErrorKind.Malformed, Refused(RequestBytes(type: Str(""))));
        Assert.Equal(WireErrorKind.Malformed, Refused(ResponseBytes(type: Str(""))));
        Assert.Equal(WireErrorKind.Malformed, Refused(MessageBytes(type: Nil)));
        Assert.Equal(WireErrorKind.Malformed, Refused(RequestBytes(type: Nil)));
    }

    [Fact]
    public void ATypeThatIsNotAStrIsMalformed()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(MessageBytes(type: Bin("x"u8.ToArray()))));
        Assert.Equal(WireErrorKind.Malformed, Refused(ResponseBytes(type: Uint(1))));
    }

    [Fact]
    public void ATypeOver128BytesIsTooLarge()
    {
        Assert.Equal(new string('a', 128), Decoded(MessageBytes(type: Str(new string('a', 128))), out _).Type);
        Assert.Equal(WireErrorKind.TooLarge, Refused(MessageBytes(type: Str(new string('a', 129)))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(RequestBytes(type: Str(new string('a', 129)))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(ResponseBytes(type: Str(new string('a', 129)))));

        // The limit counts UTF-8 bytes, not characters: 65 two-byte characters are 130 bytes.
        Assert.Equal(WireErrorKind.TooLarge, Refused(MessageBytes(type: Str(Repeat("é", 65)))));
    }

    public static TheoryData<string, byte[], WireErrorKind> WrongKeys => new()
    {
        { "0 bytes", RequestBytes(key: Bin([])), WireErrorKind.Malformed },
        { "15 bytes", RequestBytes(key: Bin(KeyBytes[..15])), WireErrorKind.Malformed },
        { "17 bytes", RequestBytes(key: Bin([.. KeyBytes, 0x00])), WireErrorKind.TooLarge },
        { "nil", RequestBytes(key: Nil), WireErrorKind.Malformed },
        { "an integer", RequestBytes(key: Uint(16)), WireErrorKind.Malformed },
    };

    [Theory]
    [MemberData(nameof(WrongKeys))]
    public void AKeyThatIsNot16BytesIsRefused(string why, byte[] message, WireErrorKind expected) =>
        Assert.True(Refused(message) == expected, why);

    [Fact]
    public void ATraceParentThatIsEmptyOrOver64BytesIsRefused()
    {
        Assert.Equal(WireErrorKind.Malformed, Refused(RequestBytes(trace: Str(""))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(RequestBytes(trace: Str(new string('t', 65)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(RequestBytes(trace: Uint(1))));
        Assert.Equal(new string('t', 64), Decoded(RequestBytes(trace: Str(new string('t', 64))), out _).TraceParent);
        Assert.Null(Decoded(RequestBytes(trace: Nil), out _).TraceParent);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(65_536UL)]
    [InlineData(uint.MaxValue + 1UL)]
    public void AFaultCodeOutsideOneTo65535IsMalformed(ulong code) =>
        Assert.Equal(WireErrorKind.Malformed, Refused(FaultBytes(code: Uint(code))));

    [Fact]
    public void FaultCodesAtTheirLimitsDecodeEvenWhenUnknown()
    {
        Assert.Equal(MessageFaultCode.Unhandled, Decoded(FaultBytes(code: Uint(1)), out _).FaultCode);
        Assert.Equal((MessageFaultCode)65_535, Decoded(FaultBytes(code: Uint(65_535)), out _).FaultCode);
        Assert.Equal((MessageFaultCode)6, Decoded(FaultBytes(code: Uint(6)), out _).FaultCode);
    }

    [Fact]
    public void AReasonOver256BytesIsTooLarge()
    {
        Assert.Equal(WireErrorKind.TooLarge, Refused(FaultBytes(reason: Str(new string('r', 257)))));
        Assert.Equal(WireErrorKind.TooLarge, Refused(FaultBytes(reason: Str(Repeat("€", 86)))));
        Assert.Equal(WireErrorKind.Malformed, Refused(FaultBytes(reason: Nil)));
        Assert.Equal(new string('r', 256), Decoded(FaultBytes(reason: Str(new string('r', 256))), out _).Reason);
        Assert.Equal("", Decoded(FaultBytes(reason: Str("")), out _).Reason);
    }

    public static TheoryData<string, byte[]> InvalidUtf8 => new()
    {
        { "type 0xff", MessageBytes(type: StrBytes(0x61, 0xff)) },
        { "type overlong NUL", RequestBytes(type: StrBytes(0xc0, 0x80)) },
        { "type encoded surrogate", ResponseBytes(type: StrBytes(0xed, 0xa0, 0x80)) },
        { "type cut sequence", MessageBytes(type: StrBytes(0x61, 0xe2, 0x82)) },
        { "type lone continuation", MessageBytes(type: StrBytes(0x80)) },
        { "traceparent 0xfe", RequestBytes(trace: StrBytes(0x30, 0xfe)) },
        { "reason cut sequence", FaultBytes(reason: StrBytes(0xf0, 0x9f, 0x98)) },
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public void InvalidUtf8IsMalformed(string why, byte[] message) =>
        Assert.True(Refused(message) == WireErrorKind.Malformed, why);

    public static TheoryData<string, byte[]> NonCanonical => new()
    {
        { "request_id 7 as uint32", RequestBytes(id: Raw("ce00000007")) },
        { "request_id 7 as uint8", RequestBytes(id: Raw("cc07")) },
        { "request_id 7 as int8", RequestBytes(id: Raw("d007")) },
        { "request_id 300 as uint32", ResponseBytes(id: Raw("ce0000012c")) },
        { "request_id 7 as uint64", FaultBytes(id: Raw("cf0000000000000007")) },
        { "timeout_ms 30000 as uint32", RequestBytes(timeout: Raw("ce00007530")) },
        { "fault code 1 as uint16", FaultBytes(code: Raw("cd0001")) },
        { "type with str8 where fixstr fits", MessageBytes(type: (ref MessagePackWriter w) => Msg.WriteStr8(ref w, QuoteType)) },
        { "type with str16", RequestBytes(type: Raw("da0001" + "78")) },
        { "traceparent with str16", RequestBytes(trace: Raw("da0037" + Convert.ToHexStringLower(Encoding.UTF8.GetBytes(TraceParent)))) },
        { "reason with str8 where fixstr fits", FaultBytes(reason: (ref MessagePackWriter w) => Msg.WriteStr8(ref w, "no")) },
        { "key as bin16", RequestBytes(key: (ref MessagePackWriter w) => Msg.WriteBin16(ref w, KeyBytes)) },
        { "array16 of 5 elements", RequestBytes(arrayHeader: Raw("dc0005")) },
    };

    [Theory]
    [MemberData(nameof(NonCanonical))]
    public void ANonCanonicalEncodingIsRefused(string why, byte[] message) =>
        Assert.True(Refused(message) == WireErrorKind.NonCanonical, why);

    [Fact]
    public void AKeyWrittenAsAStrIsRefused()
    {
        // The MessagePack reader takes a 16-byte str where bin is expected; the re-encoding check refuses it.
        var kind = Refused(RequestBytes(key: StrBytes(KeyBytes)));

        Assert.Equal(WireErrorKind.NonCanonical, kind);
    }

    [Fact]
    public void BytesAfterAFaultAreTrailing()
    {
        var fault = FaultBytes();
        Assert.Equal(MessageKind.Fault, Decoded(fault, out var offset).Kind);
        Assert.Equal(fault.Length, offset);

        Assert.Equal(WireErrorKind.TrailingBytes, Refused([.. fault, 0xc0]));
        Assert.Equal(WireErrorKind.TrailingBytes, Refused([.. Encode(Samples["fault"].Header), .. QuoteBody]));
    }

    // ----- WriteHeader's argument checks -----

    public static TheoryData<string> InvalidHeaderNames { get; } = [.. InvalidHeaders.Keys];

    private static Dictionary<string, MessageHeader> InvalidHeaders => new()
    {
        ["REQUEST id 0"] = MessageHeader.ForRequest(0, QuoteType, TimeSpan.FromSeconds(1), Key, null),
        ["RESPONSE id 0"] = MessageHeader.ForResponse(0, "t"),
        ["FAULT id 0"] = MessageHeader.ForFault(0, MessageFaultCode.Failed, "no"),
        ["MESSAGE null type"] = new(MessageKind.Message),
        ["MESSAGE empty type"] = MessageHeader.ForMessage(""),
        ["MESSAGE 129-byte type"] = MessageHeader.ForMessage(new string('a', 129)),
        ["MESSAGE 130-byte type of 65 characters"] = MessageHeader.ForMessage(Repeat("é", 65)),
        ["REQUEST empty type"] = MessageHeader.ForRequest(1, "", TimeSpan.FromSeconds(1), Key, null),
        ["RESPONSE 129-byte type"] = MessageHeader.ForResponse(1, new string('a', 129)),
        ["REQUEST timeout 0"] = MessageHeader.ForRequest(1, QuoteType, TimeSpan.Zero, Key, null),
        ["REQUEST timeout under 1 ms"] = MessageHeader.ForRequest(1, QuoteType, TimeSpan.FromTicks(9_999), Key, null),
        ["REQUEST timeout negative"] = MessageHeader.ForRequest(1, QuoteType, TimeSpan.FromSeconds(-1), Key, null),
        ["REQUEST timeout over a day"] = MessageHeader.ForRequest(1, QuoteType, TimeSpan.FromDays(1) + TimeSpan.FromMilliseconds(1), Key, null),
        ["REQUEST empty traceparent"] = MessageHeader.ForRequest(1, QuoteType, TimeSpan.FromSeconds(1), Key, ""),
        ["REQUEST 65-byte traceparent"] = MessageHeader.ForRequest(1, QuoteType, TimeSpan.FromSeconds(1), Key, new string('t', 65)),
        ["FAULT without reason"] = new(MessageKind.Fault, 1, FaultCode: MessageFaultCode.Failed),
        ["FAULT code 0"] = MessageHeader.ForFault(1, 0, "no"),
        ["FAULT 257-byte reason"] = MessageHeader.ForFault(1, MessageFaultCode.Failed, new string('r', 257)),
        ["unknown kind"] = new((MessageKind)5, 1, "t"),
    };

    [Theory]
    [MemberData(nameof(InvalidHeaderNames))]
    public void WriteHeaderRefusesAFieldOutOfRangeAndWritesNothing(string name)
    {
        var buffer = new ArrayBufferWriter<byte>();

        Assert.Throws<ArgumentException>(() => MessageEnvelope.WriteHeader(buffer, InvalidHeaders[name]));

        Assert.Equal(0, buffer.WrittenCount);
    }

    [Fact]
    public void WriteHeaderNeedsAnOutput() =>
        Assert.Throws<ArgumentNullException>(() => MessageEnvelope.WriteHeader(null!, MessageHeader.ForBytes()));

    // ----- docs/protocol.md §11.7 -----

    [Fact]
    public void TheWorkedExampleOfTheProtocolDocumentIsReproduced()
    {
        var documented = ProtocolDocument.ReadExamples("message-example");
        var computed = new Dictionary<string, string>
        {
            ["request"] = Hex(Encode(Samples["request"].Header, QuoteBody)),
            ["request-body-offset"] = Encode(Samples["request"].Header).Length.ToString(CultureInfo.InvariantCulture),
            ["request-untraced"] = Hex(Encode(Samples["request without traceparent"].Header, QuoteBody)),
            ["response"] = Hex(Encode(Samples["response"].Header, Samples["response"].Body)),
            ["fault"] = Hex(Encode(Samples["fault"].Header)),
            ["message"] = Hex(Encode(Samples["message"].Header, Samples["message"].Body)),
            ["bytes"] = Hex(Encode(Samples["bytes"].Header, Samples["bytes"].Body)),
        };

        Assert.Equal(computed.Keys.Order(), documented.Keys.Order());
        var differences = computed
            .Where(c => documented[c.Key] != c.Value)
            .Select(c => $"docs/protocol.md message example '{c.Key}' differs from the code:\n  doc:  {documented[c.Key]}\n  code: {c.Value}")
            .ToList();
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    [Fact]
    public void TheDocumentedRequestAndFaultDecodeToTheirStatedFields()
    {
        var documented = ProtocolDocument.ReadExamples("message-example");

        var request = Decoded(Convert.FromHexString(documented["request"]), out var bodyOffset);
        Assert.Equal(MessageKind.Request, request.Kind);
        Assert.Equal(7u, request.RequestId);
        Assert.Equal(QuoteType, request.Type);
        Assert.Equal(TimeSpan.FromSeconds(30), request.Timeout);
        Assert.Equal(Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), request.Key);
        Assert.Equal(TraceParent, request.TraceParent);
        Assert.Equal(int.Parse(documented["request-body-offset"], CultureInfo.InvariantCulture), bodyOffset);
        Assert.Equal(QuoteBody, Convert.FromHexString(documented["request"])[bodyOffset..]);
        Assert.Equal(QuoteBody, MessagePackSerializer.Serialize((3, "A-1")));

        var untraced = Decoded(Convert.FromHexString(documented["request-untraced"]), out _);
        Assert.Equal((300u, TimeSpan.FromDays(1), (string?)null), (untraced.RequestId, untraced.Timeout, untraced.TraceParent));

        var fault = Decoded(Convert.FromHexString(documented["fault"]), out var faultEnd);
        Assert.Equal(MessageHeader.ForFault(7, MessageFaultCode.Unhandled, "The request was not answered."), fault);
        Assert.Equal(documented["fault"].Length / 2, faultEnd);
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}

/// <summary>
/// Property-based tests (CsCheck) of the agent message codec: whatever bytes arrive, <see cref="MessageEnvelope.ReadHeader"/>
/// either decodes a header that re-encodes to exactly the bytes it read, or throws a <see cref="WireFormatException"/>;
/// and every valid header round-trips with its body.
/// </summary>
public sealed class MessageEnvelopePropertyTests
{
    /// <summary>Decodes, or returns null for a <see cref="WireFormatException"/>; any other exception fails the property.</summary>
    private static MessageHeader? DecodeOrRefuse(byte[] message)
    {
        MessageHeader header;
        int bodyOffset;
        try
        {
            header = MessageEnvelope.ReadHeader(message, out bodyOffset);
        }
        catch (WireFormatException)
        {
            return null;
        }

        // What was accepted is canonical: the header written again gives back exactly the bytes read.
        Assert.InRange(bodyOffset, 1, message.Length);
        Assert.Equal(message[..bodyOffset], MessageEnvelopeTests.Encode(header));
        if (header.Kind == MessageKind.Fault)
        {
            Assert.Equal(message.Length, bodyOffset);
        }

        return header;
    }

    [Fact]
    public void RandomBytesDecodeOrGiveAWireFormatException() =>
        Gen.Byte.Array[0, 300].Sample(bytes => DecodeOrRefuse(bytes), iter: 5000);

    [Fact]
    public void AKnownKindFollowedByRandomBytesDecodesOrGivesAWireFormatException() =>
        Gen.Select(Gen.Byte[0, 5], Gen.Byte.Array[0, 300]).Sample((kind, rest) => DecodeOrRefuse([kind, .. rest]), iter: 5000);

    /// <summary>One MessagePack value of the kinds a header holds, in canonical and other forms, or a stray byte.</summary>
    private static readonly Gen<byte[]> Token = Gen.OneOf<byte[]>(
        Gen.ULong.Select(v => Msg.Build((ref MessagePackWriter w) => w.Write(v))),
        Gen.UInt[0, 70_000].Select(v => Msg.Build((ref MessagePackWriter w) => w.Write(v))),
        Gen.UInt[0, 300].Select(v => Msg.Build((ref MessagePackWriter w) => w.WriteUInt32(v))),
        Gen.Int[-40, 40].Select(v => Msg.Build((ref MessagePackWriter w) => w.Write(v))),
        Gen.Int[0, 300].Select(n => Msg.Build((ref MessagePackWriter w) => w.Write(new string('a', n)))),
        Gen.Int[0, 40].Select(n => Msg.Build((ref MessagePackWriter w) => Msg.WriteStr8(ref w, new string('s', n)))),
        Gen.Byte.Array[0, 20].Select(b => Msg.Build((ref MessagePackWriter w) => Msg.WriteStrBytes(ref w, b))),
        Gen.Byte.Array[0, 20].Select(b => Msg.Build((ref MessagePackWriter w) => w.Write(b))),
        Gen.Const(new byte[] { 0xc0 }),
        Gen.Byte.Select(b => new byte[] { b }));

    [Fact]
    public void AKnownKindWithRandomFieldsDecodesOrGivesAWireFormatException() =>
        Gen.Select(Gen.Byte[1, 5], Gen.Int[0, 7], Token.Array[0, 7], Gen.Byte.Array[0, 8]).Sample(
            (kind, count, fields, tail) => DecodeOrRefuse(Msg.Concat([[kind, (byte)(0x90 | count)], .. fields, tail])),
            iter: 10_000);

    [Fact]
    public void ValidHeadersWithRandomEditsDecodeOrGiveAWireFormatException()
    {
        var valid = MessageEnvelopeTests.Samples.Values.Select(s => MessageEnvelopeTests.Encode(s.Header, s.Body)).ToArray();
        var edit = Gen.Select(Gen.Int[0, 3], Gen.Int[0, int.MaxValue], Gen.Byte);

        Gen.Select(Gen.Int[0, valid.Length - 1], edit.Array[1, 4]).Sample(
            (which, edits) =>
            {
                var bytes = valid[which].ToList();
                foreach (var (op, position, value) in edits)
                {
                    if (op == 0)
                    {
                        bytes.Insert(position % (bytes.Count + 1), value);
                    }
                    else if (bytes.Count > 0 && op == 1)
                    {
                        bytes[position % bytes.Count] = value;
                    }
                    else if (bytes.Count > 0 && op == 2)
                    {
                        bytes[position % bytes.Count] ^= (byte)(1 << (value % 8));
                    }
                    else if (bytes.Count > 0)
                    {
                        bytes.RemoveAt(position % bytes.Count);
                    }
                }

                DecodeOrRefuse([.. bytes]);
            },
            iter: 5000);
    }

    /// <summary>Text of 1 to <paramref name="maxRunes"/> Unicode scalars of 1 to 4 UTF-8 bytes each (never a lone surrogate).</summary>
    private static Gen<string> Text(int minRunes, int maxRunes) =>
        Gen.OneOf<int>(Gen.Int[0x20, 0x7e], Gen.Int[0x80, 0x7ff], Gen.Int[0x800, 0xd7ff], Gen.Int[0xe000, 0xfffd], Gen.Int[0x10000, 0x10ffff])
            .Select(char.ConvertFromUtf32)
            .Array[minRunes, maxRunes]
            .Select(string.Concat);

    private static readonly Gen<uint> RequestId = Gen.Frequency<uint>((1, Gen.Const(1u)), (1, Gen.Const(uint.MaxValue)), (6, Gen.UInt[1, uint.MaxValue]), (4, Gen.UInt[1, 300]));

    // 32 scalars of at most 4 bytes fit in 128 bytes; 16 in 64; 64 in 256.
    private static readonly Gen<MessageHeader> ValidHeader = Gen.OneOf<MessageHeader>(
        Gen.Const(MessageHeader.ForBytes()),
        Text(1, 32).Select(MessageHeader.ForMessage),
        Gen.Select(RequestId, Text(1, 32), Gen.Long[1, 86_400_000], Gen.Guid, Gen.Bool, Text(1, 16))
            .Select((id, type, ms, key, traced, trace) => MessageHeader.ForRequest(id, type, TimeSpan.FromMilliseconds(ms), key, traced ? trace : null)),
        Gen.Select(RequestId, Text(1, 32)).Select(MessageHeader.ForResponse),
        Gen.Select(RequestId, Gen.UShort[1, ushort.MaxValue], Text(0, 64))
            .Select((id, code, reason) => MessageHeader.ForFault(id, (MessageFaultCode)code, reason)));

    [Fact]
    public void RandomValidHeadersRoundTripWithTheirBody() =>
        Gen.Select(ValidHeader, Gen.Byte.Array[0, 64]).Sample(
            (header, body) =>
            {
                var sent = header.Kind == MessageKind.Fault ? [] : body;
                var message = MessageEnvelopeTests.Encode(header, sent);

                var decoded = MessageEnvelope.ReadHeader(message, out var bodyOffset);

                Assert.Equal(header, decoded);
                Assert.Equal(sent, message[bodyOffset..]);
                Assert.Equal(message[..bodyOffset], MessageEnvelopeTests.Encode(decoded));
            },
            iter: 5000);
}
