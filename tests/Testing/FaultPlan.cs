using System.Buffers.Binary;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Testing;

/// <summary>One frame as a <see cref="FrameRelay"/> read it: its number in its direction (from 0, handshake messages included), where it starts in the byte stream, and its bytes (2-byte big-endian length, then the body).</summary>
public readonly record struct FrameContext(int Index, long Offset, byte[] Frame)
{
    /// <summary>Bytes of the frame's body.</summary>
    public int BodyLength => Frame.Length - LengthPrefixedFrame.HeaderLength;
}

/// <summary>Which frames of one direction a fault applies to: by number, by a byte of the stream, or by a predicate.</summary>
public sealed class FrameSelector
{
    private readonly Func<FrameContext, bool> _matches;
    private readonly string _description;

    private FrameSelector(Func<FrameContext, bool> matches, string description, long? byteOffset = null)
    {
        _matches = matches;
        _description = description;
        ByteOffset = byteOffset;
    }

    /// <summary>For a selector by byte: the offset in the stream it names.</summary>
    public long? ByteOffset { get; }

    /// <summary>Frame number <paramref name="index"/> only.</summary>
    public static FrameSelector Frame(int index) => new(f => f.Index == index, $"frame {index}");

    /// <summary>Frame number <paramref name="index"/> and every later one.</summary>
    public static FrameSelector From(int index) => new(f => f.Index >= index, $"frames from {index}");

    /// <summary>The frame that holds byte <paramref name="offset"/> of the stream (its header counts).</summary>
    public static FrameSelector AtByte(long offset) =>
        new(f => f.Offset <= offset && offset < f.Offset + f.Frame.Length, $"the frame holding byte {offset}", offset);

    /// <summary>Every frame the predicate accepts (it sees the frame's number and its bytes, header included).</summary>
    public static FrameSelector Where(Func<int, ReadOnlyMemory<byte>, bool> predicate, string description)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new(f => predicate(f.Index, f.Frame), description);
    }

    /// <summary>
    /// The <paramref name="n"/>th frame (from 1) the predicate accepts: e.g. the fifth frame big enough to carry a
    /// message, wherever the handshakes and control frames before it fall. Counts as frames pass, so use one
    /// selector in one direction only.
    /// </summary>
    public static FrameSelector NthWhere(int n, Func<int, ReadOnlyMemory<byte>, bool> predicate, string description)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        var counted = 0;
        var lastIndex = -1;
        var matched = -1;
        return new(
            f =>
            {
                // Asked again about the same frame (several rules, or a replay's original), the answer stays.
                if (f.Index != lastIndex)
                {
                    lastIndex = f.Index;
                    if (predicate(f.Index, f.Frame) && ++counted == n)
                    {
                        matched = f.Index;
                    }
                }

                return f.Index == matched;
            },
            $"the {n}th of {description}");
    }

    /// <summary>The frame <paramref name="frames"/> after the one <paramref name="first"/> selects first (use both in one direction only).</summary>
    public static FrameSelector After(FrameSelector first, int frames = 1)
    {
        ArgumentNullException.ThrowIfNull(first);
        var at = -1;
        return new(
            f =>
            {
                if (at < 0 && first.Matches(f))
                {
                    at = f.Index;
                }

                return at >= 0 && f.Index == at + frames;
            },
            $"{frames} after {first}");
    }

    /// <summary>The first frame whose body is exactly <paramref name="bytes"/> long (a record of a known size, such as a CLOSE).</summary>
    public static FrameSelector FirstOfLength(int bytes) =>
        NthWhere(1, (_, f) => f.Length - LengthPrefixedFrame.HeaderLength == bytes, $"frames of {bytes} bytes");

    /// <summary>The <paramref name="n"/>th frame (from 1) whose body is longer than <paramref name="bytes"/>, counting from frame <paramref name="from"/>.</summary>
    public static FrameSelector NthLongerThan(int n, int bytes, int from = 0) =>
        NthWhere(n, (i, f) => i >= from && f.Length - LengthPrefixedFrame.HeaderLength > bytes, $"frames longer than {bytes} bytes from frame {from}");

    public static implicit operator FrameSelector(int index) => Frame(index);

    public static FrameSelector FromInt32(int index) => Frame(index);

    public bool Matches(FrameContext frame) => _matches(frame);

    public override string ToString() => _description;
}

/// <summary>The kinds of fault a <see cref="FaultPlan"/> injects.</summary>
public enum FaultKind
{
    /// <summary>Holds the frame (and so every later one) until a gate the test controls opens.</summary>
    Delay,

    /// <summary>Passes the next frame on first, then this one.</summary>
    Reorder,

    /// <summary>Passes the frame on twice.</summary>
    Duplicate,

    /// <summary>Cuts bytes off the end of the frame's body and fixes its length.</summary>
    Truncate,

    /// <summary>Passes on only the first bytes of the frame, then cuts the link: the stream ends mid-frame.</summary>
    CutMidFrame,

    /// <summary>Flips bits of one byte of the frame.</summary>
    Corrupt,

    /// <summary>Passes nothing on for the frame.</summary>
    Drop,

    /// <summary>Cuts the link before the frame: both directions end (with an error, if one is given).</summary>
    Cut,

    /// <summary>Passes an earlier frame on again after this one.</summary>
    Replay,

    /// <summary>Passes another frame on instead.</summary>
    Replace,
}

/// <summary>One fault: what, where, and its parameters.</summary>
public sealed record FaultRule(FaultKind Kind, FrameSelector At)
{
    /// <summary>Truncate: bytes cut off the body. CutMidFrame: bytes of the frame (header included) still passed on.</summary>
    public int Bytes { get; init; }

    /// <summary>Corrupt: the byte flipped, counted in the body (negative counts from the end); null for a selector by byte (that byte) or else the body's first byte.</summary>
    public int? BodyOffset { get; init; }

    /// <summary>Corrupt: the bits flipped.</summary>
    public byte Mask { get; init; } = 0x08;

    /// <summary>Delay: what the frame waits for.</summary>
    public Task? Gate { get; init; }

    /// <summary>Cut, CutMidFrame: how both ends' readers see the end (null: a plain end of stream).</summary>
    public Exception? Error { get; init; }

    /// <summary>Cut, CutMidFrame: the writers' pending and later flushes fail with <see cref="Error"/> too (a reset).</summary>
    public bool ResetWriters { get; init; }

    /// <summary>Replay: the frame passed on again.</summary>
    public FrameSelector? Original { get; init; }

    /// <summary>Replace: the frame passed on instead, from the one that arrived (header included, both).</summary>
    public Func<byte[], byte[]>? Rewrite { get; init; }

    public override string ToString() => $"{Kind} at {At}";
}

/// <summary>
/// The faults one direction of a <see cref="FaultyLink"/> injects, applied in the order they were added to each
/// frame they select. An empty plan passes every frame on unchanged.
/// </summary>
public sealed class FaultPlan
{
    private readonly List<FaultRule> _rules = [];

    public IReadOnlyList<FaultRule> Rules => _rules;

    public FaultPlan Add(FaultRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        _rules.Add(rule);
        return this;
    }

    /// <summary>Holds the frame, and so every later one, until <paramref name="gate"/> completes (the frames before it go on now).</summary>
    public FaultPlan Delay(FrameSelector at, Task gate) => Add(new(FaultKind.Delay, at) { Gate = gate });

    /// <summary>Delivers the next frame before this one.</summary>
    public FaultPlan Reorder(FrameSelector at) => Add(new(FaultKind.Reorder, at));

    public FaultPlan Duplicate(FrameSelector at) => Add(new(FaultKind.Duplicate, at));

    /// <summary>Cuts <paramref name="bytes"/> off the end of the frame's body and fixes its length.</summary>
    public FaultPlan Truncate(FrameSelector at, int bytes) => Add(new(FaultKind.Truncate, at) { Bytes = bytes });

    /// <summary>Passes on the first <paramref name="keep"/> bytes of the frame (header included), then cuts the link.</summary>
    public FaultPlan CutMidFrame(FrameSelector at, int keep, Exception? error = null) => Add(new(FaultKind.CutMidFrame, at) { Bytes = keep, Error = error });

    /// <summary>Flips <paramref name="mask"/> in one byte: <paramref name="bodyOffset"/> of the body (negative from its end), or the selected byte of a selector by byte.</summary>
    public FaultPlan Corrupt(FrameSelector at, int? bodyOffset = null, byte mask = 0x08) => Add(new(FaultKind.Corrupt, at) { BodyOffset = bodyOffset, Mask = mask });

    public FaultPlan Drop(FrameSelector at) => Add(new(FaultKind.Drop, at));

    /// <summary>
    /// Cuts the link before the frame; both ends' readers see <paramref name="error"/> (null: a plain end of stream),
    /// and with <paramref name="resetWriters"/> both ends' writers fail with it as well.
    /// </summary>
    public FaultPlan Cut(FrameSelector at, Exception? error = null, bool resetWriters = false) => Add(new(FaultKind.Cut, at) { Error = error, ResetWriters = resetWriters });

    /// <summary>Delivers frame <paramref name="original"/> a second time right after the frame <paramref name="after"/> selects.</summary>
    public FaultPlan Replay(FrameSelector original, FrameSelector after) => Add(new(FaultKind.Replay, after) { Original = original });

    /// <summary>Passes on a frame with <paramref name="body"/> instead.</summary>
    public FaultPlan Replace(FrameSelector at, byte[] body) => Add(new(FaultKind.Replace, at) { Rewrite = _ => Frame(body) });

    /// <summary>Passes on what <paramref name="rewrite"/> makes of the frame instead (header included, both).</summary>
    public FaultPlan Replace(FrameSelector at, Func<byte[], byte[]> rewrite) => Add(new(FaultKind.Replace, at) { Rewrite = rewrite });

    /// <summary>A frame with <paramref name="body"/>: its length, then the body.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> body)
    {
        var frame = new byte[LengthPrefixedFrame.HeaderLength + body.Length];
        LengthPrefixedFrame.WriteHeader(frame, body.Length);
        body.CopyTo(frame.AsSpan(LengthPrefixedFrame.HeaderLength));
        return frame;
    }

    internal static byte[] Truncated(byte[] frame, int bytes)
    {
        var body = Math.Max(0, frame.Length - LengthPrefixedFrame.HeaderLength - bytes);
        var cut = frame[..(LengthPrefixedFrame.HeaderLength + body)];
        BinaryPrimitives.WriteUInt16BigEndian(cut, (ushort)body);
        return cut;
    }

    internal static byte[] Corrupted(FaultRule rule, FrameContext context, byte[] frame)
    {
        var at = rule.BodyOffset switch
        {
            >= 0 and var offset => LengthPrefixedFrame.HeaderLength + offset,
            < 0 and var fromEnd => frame.Length + fromEnd,
            null when rule.At.ByteOffset is { } offset => (int)(offset - context.Offset),
            null => LengthPrefixedFrame.HeaderLength,
        };
        var copy = (byte[])frame.Clone();
        copy[at] ^= rule.Mask;
        return copy;
    }
}
