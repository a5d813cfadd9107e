using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Disagreement on keys, psks or prologue fails the handshake, and a failed handshake stays failed.</summary>
public sealed class WrongKeyTests
{
    [Theory]
    [InlineData("ChaChaPoly")]
    [InlineData("AESGCM")]
    public void IkWithTheWrongResponderStaticFailsAtTheResponderWithDecryptFailed(string cipher)
    {
        var name = $"Noise_IK_25519_{cipher}_SHA256";
        using var initiatorBuilder = Configure(name, initiator: true, remoteStaticOverride: OtherStaticPublic);
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = BuildResponder(name);
        var message = new byte[256];
        var written = initiator.WriteMessage([1, 2, 3], message);
        Fails(NoiseErrorKind.DecryptFailed, () => responder.ReadMessage(message.AsSpan(0, written), new byte[256]));
        AssertAborted(responder);
    }

    [Theory]
    [InlineData("Noise_NK_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_XK_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_N_25519_ChaChaPoly_SHA256")]
    [InlineData("Noise_X_25519_ChaChaPoly_SHA256")]
    public void InitiatorWithTheWrongResponderStaticFailsAtTheFirstEncryptedRead(string name)
    {
        using var initiatorBuilder = Configure(name, initiator: true, remoteStaticOverride: OtherStaticPublic);
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = BuildResponder(name);
        var message = new byte[256];
        var written = initiator.WriteMessage([1, 2, 3], message);
        Fails(NoiseErrorKind.DecryptFailed, () => responder.ReadMessage(message.AsSpan(0, written), new byte[256]));
        AssertAborted(responder);
    }

    [Fact]
    public void KkResponderWithTheWrongInitiatorStaticFails()
    {
        const string name = "Noise_KK_25519_ChaChaPoly_SHA256";
        using var initiator = BuildInitiator(name);
        using var responderBuilder = Configure(name, initiator: false, remoteStaticOverride: OtherStaticPublic);
        using var responder = responderBuilder.BuildResponder();
        var message = new byte[256];
        var written = initiator.WriteMessage([], message);
        Fails(NoiseErrorKind.DecryptFailed, () => responder.ReadMessage(message.AsSpan(0, written), new byte[256]));
        AssertAborted(responder);
    }

    [Fact]
    public void KnResponderWithTheWrongInitiatorStaticIsCaughtByTheInitiator()
    {
        // KN: the responder's "se" uses the initiator static it believes in; the initiator's read then fails.
        const string name = "Noise_KN_25519_ChaChaPoly_SHA256";
        using var initiator = BuildInitiator(name);
        using var responderBuilder = Configure(name, initiator: false, remoteStaticOverride: OtherStaticPublic);
        using var responder = responderBuilder.BuildResponder();
        var message = new byte[256];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);
        written = responder.WriteMessage([], message);
        Fails(NoiseErrorKind.DecryptFailed, () => initiator.ReadMessage(message.AsSpan(0, written), new byte[256]));
        AssertAborted(initiator);
    }

    [Theory]
    [InlineData("Noise_NNpsk0_25519_ChaChaPoly_SHA256", 0)]
    [InlineData("Noise_NNpsk2_25519_ChaChaPoly_SHA256", 1)]
    [InlineData("Noise_XXpsk3_25519_AESGCM_BLAKE2b", 2)]
    [InlineData("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", 1)]
    [InlineData("Noise_Npsk0_25519_ChaChaPoly_SHA512", 0)]
    public void MismatchedPskFailsAtTheFirstMessageAfterThePsk(string name, int failingMessage)
    {
        using var initiatorBuilder = Configure(name, initiator: true);
        using var responderBuilder = Configure(name, initiator: false, psk: i => Bytes($"wrong psk {i}", 32));
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = responderBuilder.BuildResponder();
        AssertFailsAtMessage(initiator, responder, failingMessage);
    }

    [Fact]
    public void OnlyTheSecondOfTwoPsksDifferingIsStillCaught()
    {
        const string name = "Noise_XXpsk0+psk3_25519_ChaChaPoly_SHA256";
        using var initiatorBuilder = Configure(name, initiator: true);
        using var responderBuilder = Configure(name, initiator: false, psk: i => i == 0 ? Psk(0) : Bytes("wrong", 32));
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = responderBuilder.BuildResponder();
        AssertFailsAtMessage(initiator, responder, 2);
    }

    [Fact]
    public void PsksAreUsedInTheOrderTheModifiersAppearInTheNameOrOutOfOrderModifiersAreRefused()
    {
        // WithPsk documents "in the order the psk modifiers appear in the protocol name". With XXpsk3+psk0 the
        // first key given is then psk3's (end of message 3) and the second psk0's (start of message 1): if only
        // the second key differs, message 1 must already fail. Refusing the non-canonical name is also consistent.
        const string name = "Noise_XXpsk3+psk0_25519_ChaChaPoly_SHA256";
        NoiseProtocol protocol;
        try
        {
            protocol = NoiseProtocol.Parse(name);
        }
        catch (NoiseException e) when (e.Kind == NoiseErrorKind.InvalidProtocolName)
        {
            return;
        }

        Assert.Equal(2, protocol.Pattern.PskCount);
        using var initiatorBuilder = Configure(name, initiator: true);
        using var responderBuilder = Configure(name, initiator: false, psk: i => i == 0 ? Psk(0) : Bytes("wrong", 32));
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = responderBuilder.BuildResponder();
        AssertFailsAtMessage(initiator, responder, 0);
    }

    [Theory]
    [InlineData("Noise_NN_25519_ChaChaPoly_SHA256", 1)]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256", 1)]
    [InlineData("Noise_IK_25519_AESGCM_SHA512", 0)]
    [InlineData("Noise_N_25519_ChaChaPoly_BLAKE2s", 0)]
    [InlineData("Noise_NNpsk0_25519_ChaChaPoly_SHA256", 0)]
    public void MismatchedPrologueFailsAtTheFirstEncryptedMessage(string name, int failingMessage)
    {
        using var initiatorBuilder = Configure(name, initiator: true, prologue: [1, 2, 3]);
        using var responderBuilder = Configure(name, initiator: false, prologue: [1, 2, 4]);
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = responderBuilder.BuildResponder();
        AssertFailsAtMessage(initiator, responder, failingMessage);
    }

    [Fact]
    public void EmptyAndMissingProloguesAgree()
    {
        // Spec §6: the prologue is mixed into h even when empty; "no prologue" is the empty prologue.
        using var initiatorBuilder = new NoiseBuilder(NN).WithPrologue([]);
        using var responderBuilder = new NoiseBuilder(NN);
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = responderBuilder.BuildResponder();
        RunHandshake(initiator, responder);
    }

    [Fact]
    public void AfterAHandshakeErrorEveryFurtherCallIsWrongState()
    {
        using var initiatorBuilder = Configure(IK, initiator: true, remoteStaticOverride: OtherStaticPublic);
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = BuildResponder(IK);
        var message = new byte[256];
        var written = initiator.WriteMessage([], message);
        Fails(NoiseErrorKind.DecryptFailed, () => responder.ReadMessage(message.AsSpan(0, written), new byte[256]));

        // Even the genuine next step and a retry of the same message are refused.
        Fails(NoiseErrorKind.WrongState, () => responder.ReadMessage(message.AsSpan(0, written), new byte[256]));
        Fails(NoiseErrorKind.WrongState, () => responder.WriteMessage([], new byte[256]));
        Fails(NoiseErrorKind.WrongState, () => responder.GetMessageLength(0));
        Fails(NoiseErrorKind.WrongState, () => responder.GetMaxPayloadLength());
        Fails(NoiseErrorKind.WrongState, () => responder.ToTransport());
        Fails(NoiseErrorKind.WrongState, () => responder.ToStatelessTransport());
        Assert.False(responder.IsMyTurn);
        Assert.False(responder.IsCompleted);
    }

    [Fact]
    public void AfterAnErrorWhileWritingEveryFurtherCallIsWrongState()
    {
        // NN: the responder's "ee" against an all-zero (low-order) initiator ephemeral fails inside WriteMessage.
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        responder.ReadMessage(new byte[32], []);
        Fails(NoiseErrorKind.InvalidKey, () => responder.WriteMessage([], new byte[64]));
        AssertAborted(responder);
        Fails(NoiseErrorKind.WrongState, () => responder.WriteMessage([], new byte[64]));
    }

    private static void AssertAborted(HandshakeState state)
    {
        Assert.False(state.IsMyTurn);
        Fails(NoiseErrorKind.WrongState, () => state.ReadMessage(new byte[200], new byte[200]));
        Fails(NoiseErrorKind.WrongState, () => state.WriteMessage([], new byte[200]));
        Fails(NoiseErrorKind.WrongState, () => state.ToTransport());
    }

    /// <summary>Runs the handshake and checks that message <paramref name="failingMessage"/> (0-based) is the first to fail.</summary>
    private static void AssertFailsAtMessage(HandshakeState initiator, HandshakeState responder, int failingMessage)
    {
        var message = new byte[1024];
        var payload = new byte[1024];
        for (var index = 0; ; index++)
        {
            var (writer, reader) = initiator.IsMyTurn ? (initiator, responder) : (responder, initiator);
            var written = writer.WriteMessage([1, 2, 3], message);
            if (index == failingMessage)
            {
                Fails(NoiseErrorKind.DecryptFailed, () => reader.ReadMessage(message.AsSpan(0, written), payload));
                AssertAborted(reader);
                return;
            }

            reader.ReadMessage(message.AsSpan(0, written), payload);
            Assert.False(initiator.IsCompleted && responder.IsCompleted, "the handshake completed despite the mismatch");
        }
    }
}
