using System.Buffers.Binary;
using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Policy;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// The channel record layer: a real <see cref="SecureChannel"/> (alice, the initiator) completes an honest handshake
/// with a rogue responder (bob, through the channel's own handshake code), which then sends the fuzzed records, each
/// sealed with the right transport key, so every record reaches the channel's record handling: the first one must be
/// ACCEPT, then DATA fragments, keepalives, rekeys, credential updates and closes in any order and shape.
/// Input: records of <c>[type][length: u16 BE][body]</c> (the last one takes what is left); type 0xFF sends its body as a
/// raw, unsealed frame. The rogue rekeys its sending key after each REKEY it sends, as a genuine peer would. Then the
/// rogue's output ends, and the channel's messages are drained until it closes. Expected: <see cref="SecureChannelException"/>
/// from connecting and receiving. A channel that does not close within the guard is a hang.
/// </summary>
public sealed class ChannelRecordsTarget : IFuzzTarget
{
    private const byte RawFrame = 0xff;
    private const int MaxRecords = 64;

    // The failure guard only: an honest run ends in microseconds once the rogue's output completes.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private static readonly AccessPolicy AllowAll = AccessPolicy.Parse("true");

    // One verifier per side for the whole process: its cache spares each handshake the signature checks of the same cast.
    private static readonly SecureChannelOptions Alice = new()
    {
        Identity = FuzzWorld.Alice,
        ChannelKey = FuzzWorld.AliceChannelKey,
        Attestation = FuzzWorld.AliceAttestation,
        Credentials = [FuzzWorld.AliceChain],
        Verifier = FuzzWorld.NewVerifier(),
        TimeProvider = FuzzWorld.Time,
        Policy = AllowAll,
        FixedEphemeralPrivateKeyForTestingOnly = FuzzWorld.Seed(90),
    };

    private static readonly SecureChannelOptions Bob = new()
    {
        Identity = FuzzWorld.Bob,
        ChannelKey = FuzzWorld.BobChannelKey,
        Attestation = FuzzWorld.BobAttestation,
        Credentials = [FuzzWorld.BobChain],
        Verifier = FuzzWorld.NewVerifier(),
        TimeProvider = FuzzWorld.Time,
        Policy = AllowAll,
        FixedEphemeralPrivateKeyForTestingOnly = FuzzWorld.Seed(91),
    };

    // Reused by every input (targets run one input at a time), off the large object heap.
    private static readonly byte[] Sealed = new byte[NoiseConstants.MaxMessageLength];

    private static readonly PipeOptions Unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);

    public string Name => "channel-records";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(input.ToArray()).GetAwaiter().GetResult();

    public IEnumerable<byte[]> Seeds()
    {
        static byte[] R(RecordType type, ReadOnlySpan<byte> body) => [(byte)type, (byte)(body.Length >> 8), (byte)body.Length, .. body];
        byte[] accept = R(RecordType.Accept, default);
        byte[] closeNormal = R(RecordType.Close, [0, 0]);
        yield return accept;
        yield return [.. accept, .. R(RecordType.DataLast, "hello"u8), .. closeNormal];
        yield return [.. accept, .. R(RecordType.DataMore, "hel"u8), .. R(RecordType.DataMore, "l"u8), .. R(RecordType.DataLast, "o"u8), .. closeNormal];
        yield return [.. accept, .. R(RecordType.Keepalive, default), .. R(RecordType.Rekey, default), .. R(RecordType.DataLast, "after rekey"u8), .. closeNormal];
        yield return [.. accept, .. R(RecordType.CredentialUpdate, CredentialUpdate.Encode([FuzzWorld.BobChain])), .. closeNormal];
        yield return [.. accept, .. R(RecordType.Close, [0, 3])];
        yield return R(RecordType.Close, [0, 5]);
        yield return [.. accept, RawFrame, 0, 2, 0, 1];
    }

    private static async Task RunAsync(byte[] input)
    {
        var toAlice = new Pipe(Unbounded);
        var toBob = new Pipe(Unbounded);
        var alicePipe = new DuplexPipe(toAlice.Reader, toBob.Writer);
        var bobPipe = new DuplexPipe(toBob.Reader, toAlice.Writer);
        using var stop = new CancellationTokenSource(Guard);

        var connecting = SecureChannel.ConnectAsync(alicePipe, Alice, stop.Token);
        var rogue = await ChannelHandshake.RunAsync(bobPipe, Bob, isInitiator: false, stop.Token).ConfigureAwait(false);
        using (var transport = rogue.Transport)
        {
            await SendRecordsAsync(toAlice.Writer, transport, input).ConfigureAwait(false);
        }

        await toAlice.Writer.CompleteAsync().ConfigureAwait(false);

        SecureChannel channel;
        try
        {
            channel = await connecting.WaitAsync(Guard).ConfigureAwait(false);
        }
        catch (SecureChannelException)
        {
            return;
        }

        try
        {
            while (await channel.ReceiveAsync(stop.Token).ConfigureAwait(false) is { } message)
            {
                message.Dispose();
            }
        }
        catch (SecureChannelException)
        {
        }
        finally
        {
            await channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task SendRecordsAsync(PipeWriter output, NoiseTransport transport, byte[] input)
    {
        var message = Sealed;
        var offset = 0;
        for (var n = 0; n < MaxRecords && offset < input.Length; n++)
        {
            var type = input[offset];
            var declared = offset + 3 <= input.Length ? BinaryPrimitives.ReadUInt16BigEndian(input.AsSpan(offset + 1)) : 0;
            var bodyStart = Math.Min(offset + 3, input.Length);
            var length = Math.Min(declared, Math.Min(input.Length - bodyStart, NoiseConstants.MaxTransportPayloadLength - 1));
            var body = input.AsSpan(bodyStart, length);
            offset = bodyStart + length;

            int frameLength;
            if (type == RawFrame)
            {
                body.CopyTo(message);
                frameLength = body.Length;
            }
            else
            {
                byte[] record = [type, .. body];
                frameLength = transport.Write(record, message);
            }

            var span = output.GetSpan(LengthPrefixedFrame.HeaderLength + frameLength);
            LengthPrefixedFrame.WriteHeader(span, frameLength);
            message.AsSpan(0, frameLength).CopyTo(span[LengthPrefixedFrame.HeaderLength..]);
            output.Advance(LengthPrefixedFrame.HeaderLength + frameLength);
            if (type == (byte)RecordType.Rekey)
            {
                transport.RekeySending();
            }
        }

        await output.FlushAsync().ConfigureAwait(false);
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
