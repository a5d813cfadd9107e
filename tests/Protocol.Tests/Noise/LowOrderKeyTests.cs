using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>X25519 public keys of small order make DH output all zeros: they must be refused as InvalidKey.</summary>
public sealed class LowOrderKeyTests
{
    /// <summary>Points of order 1, 2, 4 and 8 on Curve25519 (the libsodium blocklist), little-endian u-coordinates.</summary>
    public static TheoryData<string> LowOrderPoints() =>
    [
        "0000000000000000000000000000000000000000000000000000000000000000", // 0
        "0100000000000000000000000000000000000000000000000000000000000000", // 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p - 1
    ];

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void AgreeWithALowOrderPublicKeyIsInvalidKey(string point)
    {
        using var pair = Curve25519Dh.Instance.ImportPrivateKey(InitiatorStaticPrivate);
        var output = new byte[32];
        Fails(NoiseErrorKind.InvalidKey, () => Curve25519Dh.Instance.Agree(pair, Convert.FromHexString(point), output));
        Assert.Equal(new byte[32], output);
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void LowOrderResponderEphemeralFailsTheInitiatorsReadWithInvalidKeyAndAbortsIt(string point)
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        var message = new byte[64];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);
        written = responder.WriteMessage([], message);

        Convert.FromHexString(point).CopyTo(message, 0);
        Fails(NoiseErrorKind.InvalidKey, () => initiator.ReadMessage(message.AsSpan(0, written), new byte[64]));
        Fails(NoiseErrorKind.WrongState, () => initiator.ReadMessage(message.AsSpan(0, written), new byte[64]));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void LowOrderInitiatorEphemeralFailsTheResponderWhenItMixesEe(string point)
    {
        using var responder = BuildResponder(NN);

        // The first NN message is just e: reading it only hashes it; the DH comes with the reply.
        responder.ReadMessage(Convert.FromHexString(point), []);
        Fails(NoiseErrorKind.InvalidKey, () => responder.WriteMessage([], new byte[64]));
        Fails(NoiseErrorKind.WrongState, () => responder.WriteMessage([], new byte[64]));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void LowOrderEphemeralInAMessageWithImmediateDhFailsTheRead(string point)
    {
        // IK's first message is e, es, ...: the responder's es uses the received e at once.
        using var responder = BuildResponder(IK);
        var message = new byte[96];
        Convert.FromHexString(point).CopyTo(message, 0);
        Fails(NoiseErrorKind.InvalidKey, () => responder.ReadMessage(message, new byte[96]));
        Fails(NoiseErrorKind.WrongState, () => responder.ReadMessage(message, new byte[96]));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void LowOrderRemoteStaticGivenInAdvanceFailsTheFirstDh(string point)
    {
        using var builder = new NoiseBuilder("Noise_NK_25519_ChaChaPoly_SHA256").WithRemoteStaticPublicKey(Convert.FromHexString(point));
        using var initiator = builder.BuildInitiator();
        Fails(NoiseErrorKind.InvalidKey, () => initiator.WriteMessage([], new byte[64]));
        Fails(NoiseErrorKind.WrongState, () => initiator.WriteMessage([], new byte[64]));
    }
}
