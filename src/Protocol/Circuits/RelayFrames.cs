using System.Buffers.Binary;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Circuits;

/// <summary>HELLO: what the dialer asks of the relay.</summary>
/// <param name="Listen">Whether the hop should be reachable at the dialer's identifier and names.</param>
/// <param name="Names">Names to register (only when listening).</param>
/// <param name="Relay">The dialer's relay name when a relay dials a peer relay; null for agents.</param>
public sealed record HelloFrame(bool Listen, IReadOnlyList<string> Names, string? Relay);

/// <summary>WELCOME: what the relay granted.</summary>
/// <param name="Relay">The relay's name.</param>
/// <param name="Addresses">The addresses registered for this hop.</param>
/// <param name="MaxWindow">The largest circuit window the relay allows.</param>
/// <param name="MaxData">The largest DATA body.</param>
public sealed record WelcomeFrame(string Relay, IReadOnlyList<string> Addresses, uint MaxWindow, uint MaxData);

/// <summary>OPEN: a circuit to an address.</summary>
/// <param name="Address">Where to.</param>
/// <param name="Window">The opener's receive window.</param>
/// <param name="Opener">Who opened it, as the first relay verified it (null from an agent).</param>
/// <param name="Principal">On whose behalf, as the first relay verified it (null from an agent).</param>
/// <param name="Via">The relays the circuit crossed, nearest to the opener first.</param>
public sealed record OpenFrame(string Address, uint Window, string? Opener, string? Principal, IReadOnlyList<string> Via);

/// <summary>GOAWAY, REFUSE or RESET: a code and a reason for people.</summary>
/// <param name="Code">The code programs act on.</param>
/// <param name="Reason">Text for people, at most <see cref="RelayLimits.MaxReasonLength"/> bytes.</param>
public readonly record struct ReasonFrame(RelayErrorCode Code, string Reason);

/// <summary>
/// Encodes and decodes relay frames (docs/protocol.md §9.2). Decoders throw <see cref="RelayException"/> with
/// <see cref="RelayErrorCode.ProtocolViolation"/> for anything malformed; they never return partial frames.
/// </summary>
public static class RelayFrames
{
    /// <summary>Reads a frame's type without judging the rest.</summary>
    /// <exception cref="RelayException">Empty frame or unknown type.</exception>
    public static RelayFrameType ReadType(ReadOnlySpan<byte> frame)
    {
        if (frame.IsEmpty)
        {
            throw Violation("an empty relay frame");
        }

        var type = (RelayFrameType)frame[0];
        return Enum.IsDefined(type) ? type : throw Violation($"unknown relay frame type 0x{frame[0]:x2}");
    }

    /// <summary>True for the frame types that carry a circuit id.</summary>
    public static bool IsCircuitFrame(RelayFrameType type) => type >= RelayFrameType.Open;

    /// <summary>Reads the circuit id of a circuit frame.</summary>
    /// <exception cref="RelayException">Too short, or circuit id 0.</exception>
    public static uint ReadCircuit(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < RelayLimits.CircuitHeaderLength)
        {
            throw Violation("a circuit frame shorter than its header");
        }

        var circuit = BinaryPrimitives.ReadUInt32BigEndian(frame[1..]);
        return circuit != 0 ? circuit : throw Violation("circuit id 0");
    }

    /// <summary>Overwrites the circuit id of a circuit frame in place (the relay's forwarding step).</summary>
    public static void RewriteCircuit(Span<byte> frame, uint circuit) =>
        BinaryPrimitives.WriteUInt32BigEndian(frame[1..], circuit);

    /// <summary>Writes a DATA header (type and circuit) into the first <see cref="RelayLimits.CircuitHeaderLength"/> bytes.</summary>
    public static void WriteDataHeader(Span<byte> destination, uint circuit) => WriteHeader(destination, RelayFrameType.Data, circuit);

    /// <summary>Encodes HELLO.</summary>
    public static byte[] Hello(HelloFrame hello)
    {
        ArgumentNullException.ThrowIfNull(hello);
        var writer = new CanonicalWriter();
        writer.WriteArray(4);
        writer.WriteUnsigned(RelayLimits.Version);
        writer.WriteUnsigned(hello.Listen ? 1u : 0u);
        WriteTexts(ref writer, hello.Names);
        WriteOptionalText(ref writer, hello.Relay);
        return WithType(RelayFrameType.Hello, writer.ToArray());
    }

    /// <summary>Decodes HELLO.</summary>
    public static HelloFrame DecodeHello(ReadOnlyMemory<byte> frame) => Decode(frame, RelayFrameType.Hello, 1, "HELLO", static (ref CanonicalReader r) =>
    {
        r.ReadArray("hello", 4, 4);
        r.ReadVersion(RelayLimits.Version);
        var listen = r.ReadUnsigned("listen") switch
        {
            0 => false,
            1 => true,
            _ => throw new WireFormatException(WireErrorKind.Malformed, "HELLO: listen is neither 0 nor 1."),
        };
        var names = ReadTexts(ref r, "names", RelayLimits.MaxNamesInHello, RelayLimits.MaxNameLength);
        var relay = ReadOptionalText(ref r, "relay", RelayLimits.MaxNameLength);
        return new HelloFrame(listen, names, relay);
    }, static hello => Hello(hello)[1..]);

    /// <summary>Encodes WELCOME.</summary>
    public static byte[] Welcome(WelcomeFrame welcome)
    {
        ArgumentNullException.ThrowIfNull(welcome);
        var writer = new CanonicalWriter();
        writer.WriteArray(5);
        writer.WriteUnsigned(RelayLimits.Version);
        writer.WriteText(welcome.Relay);
        WriteTexts(ref writer, welcome.Addresses);
        writer.WriteUnsigned(welcome.MaxWindow);
        writer.WriteUnsigned(welcome.MaxData);
        return WithType(RelayFrameType.Welcome, writer.ToArray());
    }

    /// <summary>Decodes WELCOME.</summary>
    public static WelcomeFrame DecodeWelcome(ReadOnlyMemory<byte> frame) => Decode(frame, RelayFrameType.Welcome, 1, "WELCOME", static (ref CanonicalReader r) =>
    {
        r.ReadArray("welcome", 5, 5);
        r.ReadVersion(RelayLimits.Version);
        var relay = r.ReadText("relay", RelayLimits.MaxNameLength);
        var addresses = ReadTexts(ref r, "addresses", RelayLimits.MaxNamesInHello + 1, RelayLimits.MaxAddressLength);
        var maxWindow = ReadU32(ref r, "max_window");
        var maxData = ReadU32(ref r, "max_data");
        return new WelcomeFrame(relay, addresses, maxWindow, maxData);
    }, static welcome => Welcome(welcome)[1..]);

    /// <summary>Encodes GOAWAY.</summary>
    public static byte[] GoAway(RelayErrorCode code, string reason) => WithType(RelayFrameType.GoAway, EncodeReason(code, reason));

    /// <summary>Decodes GOAWAY.</summary>
    public static ReasonFrame DecodeGoAway(ReadOnlyMemory<byte> frame) => DecodeReason(frame, RelayFrameType.GoAway, 1, "GOAWAY");

    /// <summary>Encodes PING or PONG.</summary>
    public static byte[] Ping(RelayFrameType type, ulong nonce)
    {
        var frame = new byte[1 + RelayLimits.PingNonceLength];
        frame[0] = (byte)type;
        BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(1), nonce);
        return frame;
    }

    /// <summary>Decodes the nonce of a PING or PONG.</summary>
    public static ulong DecodePing(ReadOnlySpan<byte> frame) =>
        frame.Length == 1 + RelayLimits.PingNonceLength ? BinaryPrimitives.ReadUInt64BigEndian(frame[1..]) : throw Violation("a PING or PONG whose nonce is not 8 bytes");

    /// <summary>Encodes OPEN.</summary>
    public static byte[] Open(uint circuit, OpenFrame open)
    {
        ArgumentNullException.ThrowIfNull(open);
        var writer = new CanonicalWriter();
        writer.WriteArray(5);
        writer.WriteText(open.Address);
        writer.WriteUnsigned(open.Window);
        WriteOptionalText(ref writer, open.Opener);
        WriteOptionalText(ref writer, open.Principal);
        WriteTexts(ref writer, open.Via);
        return WithHeader(RelayFrameType.Open, circuit, writer.ToArray());
    }

    /// <summary>Decodes OPEN's body.</summary>
    public static OpenFrame DecodeOpen(ReadOnlyMemory<byte> frame) => Decode(frame, RelayFrameType.Open, RelayLimits.CircuitHeaderLength, "OPEN", static (ref CanonicalReader r) =>
    {
        r.ReadArray("open", 5, 5);
        var address = r.ReadText("address", RelayLimits.MaxAddressLength);
        var window = ReadU32(ref r, "window");
        var opener = ReadOptionalText(ref r, "opener", RelayLimits.MaxAddressLength);
        var principal = ReadOptionalText(ref r, "principal", RelayLimits.MaxPrincipalLength);
        var via = ReadTexts(ref r, "via", RelayLimits.MaxVia, RelayLimits.MaxNameLength);
        return new OpenFrame(address, window, opener, principal, via);
    }, static open => Open(1, open)[RelayLimits.CircuitHeaderLength..]);

    /// <summary>Encodes ACCEPT or CREDIT: the circuit and a u32.</summary>
    public static byte[] WindowFrame(RelayFrameType type, uint circuit, uint window)
    {
        var frame = new byte[RelayLimits.CircuitHeaderLength + 4];
        WriteHeader(frame, type, circuit);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(RelayLimits.CircuitHeaderLength), window);
        return frame;
    }

    /// <summary>Decodes the u32 of ACCEPT or CREDIT; it must be at least 1.</summary>
    public static uint DecodeWindow(ReadOnlySpan<byte> frame)
    {
        if (frame.Length != RelayLimits.CircuitHeaderLength + 4)
        {
            throw Violation("an ACCEPT or CREDIT whose body is not 4 bytes");
        }

        var value = BinaryPrimitives.ReadUInt32BigEndian(frame[RelayLimits.CircuitHeaderLength..]);
        return value != 0 ? value : throw Violation("an ACCEPT window or CREDIT increment of 0");
    }

    /// <summary>Encodes CLOSE.</summary>
    public static byte[] Close(uint circuit)
    {
        var frame = new byte[RelayLimits.CircuitHeaderLength];
        WriteHeader(frame, RelayFrameType.Close, circuit);
        return frame;
    }

    /// <summary>Checks that a CLOSE carries nothing after its circuit id.</summary>
    public static void CheckClose(ReadOnlySpan<byte> frame)
    {
        if (frame.Length != RelayLimits.CircuitHeaderLength)
        {
            throw Violation("a CLOSE with a body");
        }
    }

    /// <summary>Encodes REFUSE or RESET.</summary>
    public static byte[] CircuitReason(RelayFrameType type, uint circuit, RelayErrorCode code, string reason) =>
        WithHeader(type, circuit, EncodeReason(code, reason));

    /// <summary>Decodes REFUSE or RESET.</summary>
    public static ReasonFrame DecodeCircuitReason(ReadOnlyMemory<byte> frame, RelayFrameType type) =>
        DecodeReason(frame, type, RelayLimits.CircuitHeaderLength, type == RelayFrameType.Refuse ? "REFUSE" : "RESET");

    /// <summary>Cuts a reason to <see cref="RelayLimits.MaxReasonLength"/> UTF-8 bytes, never inside a character.</summary>
    public static string CutReason(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        if (System.Text.Encoding.UTF8.GetByteCount(reason) <= RelayLimits.MaxReasonLength)
        {
            return reason;
        }

        var length = Math.Min(reason.Length, RelayLimits.MaxReasonLength);
        while (System.Text.Encoding.UTF8.GetByteCount(reason.AsSpan(0, length)) > RelayLimits.MaxReasonLength || (length > 0 && char.IsHighSurrogate(reason[length - 1])))
        {
            length--;
        }

        return reason[..length];
    }

    private static byte[] EncodeReason(RelayErrorCode code, string reason)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteUnsigned((ushort)code);
        writer.WriteText(CutReason(reason));
        return writer.ToArray();
    }

    private static ReasonFrame DecodeReason(ReadOnlyMemory<byte> frame, RelayFrameType type, int headerLength, string structure)
    {
        // The canonical check re-encodes the code as sent, so an unknown code is mapped only afterwards.
        var decoded = Decode(frame, type, headerLength, structure, static (ref CanonicalReader r) =>
        {
            r.ReadArray("reason", 2, 2);
            var raw = r.ReadUnsigned("code");
            var code = raw <= ushort.MaxValue ? (RelayErrorCode)raw : throw new WireFormatException(WireErrorKind.Malformed, "code exceeds 16 bits.");
            var reason = r.ReadText("reason", RelayLimits.MaxReasonLength);
            return new ReasonFrame(code, reason);
        }, static value => EncodeReason(value.Code, value.Reason));
        return Enum.IsDefined(decoded.Code) ? decoded : decoded with { Code = RelayErrorCode.InternalError };
    }

    private static T Decode<T>(ReadOnlyMemory<byte> frame, RelayFrameType type, int headerLength, string structure, CanonicalEncoding.DecodeFunc<T> read, Func<T, byte[]> write)
    {
        if (frame.Length < headerLength || frame.Span[0] != (byte)type)
        {
            throw Violation($"a truncated {structure}");
        }

        try
        {
            return CanonicalEncoding.Decode(frame[headerLength..], structure, int.MaxValue, read, write);
        }
        catch (WireFormatException e)
        {
            throw new RelayException(RelayErrorCode.ProtocolViolation, $"A malformed {structure} frame: {e.Message}", e);
        }
    }

    private static uint ReadU32(ref CanonicalReader reader, string field)
    {
        var value = reader.ReadUnsigned(field);
        return value <= uint.MaxValue ? (uint)value : throw new WireFormatException(WireErrorKind.Malformed, $"{field} exceeds 32 bits.");
    }

    private static void WriteTexts(ref CanonicalWriter writer, IReadOnlyList<string> texts)
    {
        writer.WriteArray(texts.Count);
        foreach (var text in texts)
        {
            writer.WriteText(text);
        }
    }

    private static string[] ReadTexts(ref CanonicalReader reader, string field, int max, int maxBytes)
    {
        var texts = new string[reader.ReadArray(field, 0, max)];
        for (var i = 0; i < texts.Length; i++)
        {
            texts[i] = reader.ReadText(field, maxBytes);
        }

        return texts;
    }

    private static void WriteOptionalText(ref CanonicalWriter writer, string? text)
    {
        if (text is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.WriteText(text);
        }
    }

    private static string? ReadOptionalText(ref CanonicalReader reader, string field, int maxBytes) =>
        reader.TryReadNil(field) ? null : reader.ReadText(field, maxBytes);

    private static void WriteHeader(Span<byte> destination, RelayFrameType type, uint circuit)
    {
        destination[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], circuit);
    }

    private static byte[] WithType(RelayFrameType type, byte[] body)
    {
        var frame = new byte[1 + body.Length];
        frame[0] = (byte)type;
        body.CopyTo(frame, 1);
        return frame;
    }

    private static byte[] WithHeader(RelayFrameType type, uint circuit, byte[] body)
    {
        var frame = new byte[RelayLimits.CircuitHeaderLength + body.Length];
        WriteHeader(frame, type, circuit);
        body.CopyTo(frame, RelayLimits.CircuitHeaderLength);
        return frame;
    }

    private static RelayException Violation(string what) => new(RelayErrorCode.ProtocolViolation, $"Protocol violation: {what}.");
}
