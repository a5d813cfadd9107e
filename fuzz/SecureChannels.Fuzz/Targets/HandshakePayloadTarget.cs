using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// The payload of channel handshake messages 2 and 3: <see cref="HandshakePayload.Decode"/>, then the verification
/// the handshake does with it (identity history, key attestation bound to the peer's static key, credential chains
/// against the trust anchors) as if alice's static key had sent it. Expected: <see cref="WireFormatException"/> from
/// decoding; <see cref="SecureChannelException"/> from verification, which wraps every identity and credential error.
/// </summary>
public sealed class HandshakePayloadTarget : IFuzzTarget
{
    private static readonly byte[] AliceStatic = FuzzWorld.AliceChannelKey.PublicKey.ToArray();

    public string Name => "handshake-payload";

    public void Run(ReadOnlySpan<byte> input)
    {
        var options = FuzzWorld.AliceOptions();
        HandshakePayload payload;
        try
        {
            payload = HandshakePayload.Decode(input.ToArray(), options.MaxCredentialChains);
        }
        catch (WireFormatException)
        {
            return;
        }

        try
        {
            ChannelHandshake.Verify(payload, AliceStatic, options, new DeferredVerifications(options.Verifier.Cache));
        }
        catch (SecureChannelException)
        {
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        var alice = new HandshakePayload(FuzzWorld.Alice.History.Encoded, FuzzWorld.AliceAttestation.Encode(), [FuzzWorld.AliceChain.Encoded]);
        yield return alice.Encode(1);
        yield return alice.Encode(64);
        yield return (alice with { Credentials = [FuzzWorld.AliceChain.Encoded, FuzzWorld.BobChain.Encoded] }).Encode(1);
        yield return HandshakePayload.Empty.Encode(1);
    }
}
