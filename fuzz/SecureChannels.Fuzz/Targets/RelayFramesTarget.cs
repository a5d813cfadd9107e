using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Relay control frames: the frame's type byte picks the decoder, as the relay's read loop does; circuit frames have
/// their circuit id read first. Expected: <see cref="RelayException"/> (the decoders' one error, a protocol violation).
/// </summary>
public sealed class RelayFramesTarget : IFuzzTarget
{
    public string Name => "relay-frames";

    public void Run(ReadOnlySpan<byte> input)
    {
        var frame = input.ToArray();
        try
        {
            var type = RelayFrames.ReadType(frame);
            if (RelayFrames.IsCircuitFrame(type) && RelayFrames.ReadCircuit(frame) == 0)
            {
                throw new FuzzInvariantException("ReadCircuit accepted circuit id 0.");
            }

            switch (type)
            {
                case RelayFrameType.Hello:
                    RelayFrames.DecodeHello(frame);
                    break;
                case RelayFrameType.Welcome:
                    RelayFrames.DecodeWelcome(frame);
                    break;
                case RelayFrameType.GoAway:
                    RelayFrames.DecodeGoAway(frame);
                    break;
                case RelayFrameType.Ping:
                case RelayFrameType.Pong:
                    RelayFrames.DecodePing(frame);
                    break;
                case RelayFrameType.Open:
                    RelayFrames.DecodeOpen(frame);
                    break;
                case RelayFrameType.Accept:
                case RelayFrameType.Credit:
                    RelayFrames.DecodeWindow(frame);
                    break;
                case RelayFrameType.Refuse:
                case RelayFrameType.Reset:
                    RelayFrames.DecodeCircuitReason(frame, type);
                    break;
                case RelayFrameType.Close:
                    RelayFrames.CheckClose(frame);
                    break;
                default:
                    break;
            }
        }
        catch (RelayException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        yield return RelayFrames.Hello(new HelloFrame(true, ["alice", "billing.eu"], null));
        yield return RelayFrames.Hello(new HelloFrame(false, [], "relay-2"));
        yield return RelayFrames.Welcome(new WelcomeFrame("relay-1", ["alice@relay-1"], 65536, 16384));
        yield return RelayFrames.GoAway(RelayErrorCode.ProtocolViolation, "shutting down");
        yield return RelayFrames.Ping(RelayFrameType.Ping, 42);
        yield return RelayFrames.Open(7, new OpenFrame("bob@relay-2", 65536, FuzzWorld.Alice.Identifier.ToString(), "user:alice", ["relay-1"]));
        yield return RelayFrames.WindowFrame(RelayFrameType.Credit, 7, 4096);
        yield return RelayFrames.CircuitReason(RelayFrameType.Refuse, 7, RelayErrorCode.ProtocolViolation, "no such address");
        yield return RelayFrames.Close(7);
        var data = new byte[RelayLimits.CircuitHeaderLength + 4];
        RelayFrames.WriteDataHeader(data, 7);
        yield return data;
    }
}
