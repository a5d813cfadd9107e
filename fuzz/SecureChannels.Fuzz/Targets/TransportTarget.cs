using System.Buffers;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Transport frames. The first byte picks the mode:
/// <list type="bullet">
/// <item>0: <see cref="LengthPrefixedFrame.TryRead"/> over a <see cref="ReadOnlySequence{T}"/> cut into segments where
/// the input says (<c>[0][cuts][cut offsets...][stream]</c>); the frames must be the same however the stream is cut.</item>
/// <item>1: <see cref="NoiseTransport.TryRead"/> of a forged message; 2: <see cref="StatelessNoiseTransport.ReadWithNonce"/>
/// of one. Both transports come from one fixed handshake per process; a forgery never advances their state.</item>
/// <item>3: the rest sealed by the genuine sender of each transport kind and read back: it must read to the same bytes.</item>
/// </list>
/// Expected: <see cref="NoiseException"/> (size limits, authentication, replay).
/// </summary>
public sealed class TransportTarget : IFuzzTarget
{
    // Each pair has its own keys, so nothing one pair seals ever reads on another.
    private static readonly (NoiseTransport Sender, NoiseTransport Receiver) Forged = Pair(70);
    private static readonly (StatelessNoiseTransport Sender, StatelessNoiseTransport Receiver) ForgedStateless = StatelessPair(72);
    private static readonly (NoiseTransport Sender, NoiseTransport Receiver) Sealed = Pair(74);
    private static readonly (StatelessNoiseTransport Sender, StatelessNoiseTransport Receiver) SealedStateless = StatelessPair(76);

    // Reused by every input (targets run one input at a time): 64 KiB arrays would otherwise land on the large object heap each execution.
    private static readonly byte[] Payload = new byte[NoiseConstants.MaxMessageLength];
    private static readonly byte[] Message = new byte[NoiseConstants.MaxMessageLength + StatelessNoiseTransport.NonceLength];

    public string Name => "transport";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var rest = input[1..];
        var payload = Payload;
        try
        {
            switch (input[0] % 4)
            {
                case 0:
                    Frames(rest);
                    break;
                case 1:
                    Forged.Receiver.TryRead(rest, payload, out _);
                    break;
                case 2:
                    ForgedStateless.Receiver.ReadWithNonce(rest, payload);
                    break;
                default:
                    RoundTrip(rest, payload);
                    break;
            }
        }
        catch (NoiseException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        byte[] stream = [0, 3, 1, 2, 3, 0, 0, 0, 5, 0x01, 0x02, 0x03, 0x04, 0x05, 0xff, 0xff, 0x00];
        yield return [0, 2, 1, 4, .. stream];
        yield return [0, 0, .. stream];
        var message = new byte[64];
        // Sealed by pairs of other keys: well-formed messages that must fail authentication.
        var length = Pair(78).Sender.Write("a forged transport message"u8, message);
        yield return [1, .. message.AsSpan(0, length)];
        length = StatelessPair(80).Sender.WriteNext("a forged stateless message"u8, message);
        yield return [2, .. message.AsSpan(0, length)];
        yield return [3, .. "a genuine record"u8];
    }

    private static void Frames(ReadOnlySpan<byte> input)
    {
        var cuts = input.IsEmpty ? 0 : Math.Min((int)input[0], 16);
        var offsets = input.Length > cuts ? input[1..(1 + cuts)] : [];
        var stream = input[Math.Min(input.Length, 1 + cuts)..].ToArray();
        var whole = ReadAll(new ReadOnlySequence<byte>(stream));
        var split = ReadAll(Segment.Cut(stream, offsets));
        if (whole.Count != split.Count || whole.Zip(split).Any(p => !p.First.AsSpan().SequenceEqual(p.Second)))
        {
            throw new FuzzInvariantException("LengthPrefixedFrame.TryRead read different frames from the same bytes cut differently.");
        }
    }

    private static List<byte[]> ReadAll(ReadOnlySequence<byte> buffer)
    {
        var frames = new List<byte[]>();
        var before = buffer.Length;
        long consumed = 0;
        while (LengthPrefixedFrame.TryRead(ref buffer, out var body))
        {
            if (body.Length > LengthPrefixedFrame.MaxBodyLength)
            {
                throw new FuzzInvariantException("A frame body exceeds the 16-bit limit.");
            }

            consumed += LengthPrefixedFrame.HeaderLength + body.Length;
            frames.Add(body.ToArray());
        }

        if (consumed + buffer.Length != before)
        {
            throw new FuzzInvariantException("LengthPrefixedFrame.TryRead lost or invented bytes.");
        }

        return frames;
    }

    private static void RoundTrip(ReadOnlySpan<byte> plaintext, byte[] payload)
    {
        if (plaintext.Length > NoiseConstants.MaxTransportPayloadLength - StatelessNoiseTransport.NonceLength)
        {
            return;
        }

        var message = Message;
        var length = Sealed.Sender.Write(plaintext, message);
        if (!Sealed.Receiver.TryRead(message.AsSpan(0, length), payload, out var written) || !payload.AsSpan(0, written).SequenceEqual(plaintext))
        {
            throw new FuzzInvariantException("A genuine transport message did not read back to its plaintext.");
        }

        length = SealedStateless.Sender.WriteNext(plaintext, message);
        written = SealedStateless.Receiver.ReadWithNonce(message.AsSpan(0, length), payload);
        if (!payload.AsSpan(0, written).SequenceEqual(plaintext))
        {
            throw new FuzzInvariantException("A genuine stateless transport message did not read back to its plaintext.");
        }
    }

    private static (HandshakeState Initiator, HandshakeState Responder) Handshake(byte keys)
    {
        const string Protocol = "Noise_NN_25519_ChaChaPoly_BLAKE2b";
        using var i = new NoiseBuilder(Protocol).WithFixedEphemeralPrivateKeyForTestingOnly(FuzzWorld.Seed(keys));
        using var r = new NoiseBuilder(Protocol).WithFixedEphemeralPrivateKeyForTestingOnly(FuzzWorld.Seed((byte)(keys + 1)));
        var initiator = i.BuildInitiator();
        var responder = r.BuildResponder();
        var message = new byte[128];
        var payload = new byte[128];
        var length = initiator.WriteMessage(default, message);
        responder.ReadMessage(message.AsSpan(0, length), payload);
        length = responder.WriteMessage(default, message);
        initiator.ReadMessage(message.AsSpan(0, length), payload);
        return (initiator, responder);
    }

    private static (NoiseTransport Sender, NoiseTransport Receiver) Pair(byte keys)
    {
        var (initiator, responder) = Handshake(keys);
        return (initiator.ToTransport(), responder.ToTransport());
    }

    private static (StatelessNoiseTransport Sender, StatelessNoiseTransport Receiver) StatelessPair(byte keys)
    {
        var (initiator, responder) = Handshake(keys);
        return (initiator.ToStatelessTransport(), responder.ToStatelessTransport());
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        private Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        // Cuts at each offset (modulo the length, in order, skipping repeats), so empty segments never appear.
        public static ReadOnlySequence<byte> Cut(byte[] bytes, ReadOnlySpan<byte> offsets)
        {
            if (bytes.Length == 0)
            {
                return ReadOnlySequence<byte>.Empty;
            }

            var points = new SortedSet<int>();
            foreach (var o in offsets)
            {
                points.Add(o % bytes.Length);
            }

            points.Remove(0);
            if (points.Count == 0)
            {
                return new ReadOnlySequence<byte>(bytes);
            }

            var first = new Segment(bytes.AsMemory(0, points.Min), 0);
            var last = first;
            var start = last.Memory.Length;
            foreach (var point in points.Skip(1).Append(bytes.Length))
            {
                var next = new Segment(bytes.AsMemory(start, point - start), start);
                last.Next = next;
                last = next;
                start = point;
            }

            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }
}
