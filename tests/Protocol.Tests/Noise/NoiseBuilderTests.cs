using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>The builder's checks: every prerequisite present, nothing superfluous, every value set once.</summary>
public sealed class NoiseBuilderTests
{
    private const string NNpsk0 = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";

    [Fact]
    public void SettingThePrologueTwiceIsInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(XX).WithPrologue([1]);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithPrologue([1]));
    }

    [Fact]
    public void SettingAnEmptyPrologueTwiceIsAlsoInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(XX).WithPrologue([]);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithPrologue([]));
    }

    [Fact]
    public void SettingTheLocalStaticKeyTwiceIsInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(XX).WithLocalStaticPrivateKey(InitiatorStaticPrivate);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithLocalStaticPrivateKey(InitiatorStaticPrivate));
    }

    [Fact]
    public void SettingALocalStaticKeyPairAfterAPrivateKeyIsInvalidConfiguration()
    {
        using var pair = Curve25519Dh.Instance.ImportPrivateKey(InitiatorStaticPrivate);
        using var builder = new NoiseBuilder(XX).WithLocalStaticPrivateKey(InitiatorStaticPrivate);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithLocalStaticKeyPair(pair));

        using var other = new NoiseBuilder(XX).WithLocalStaticKeyPair(pair);
        Fails(NoiseErrorKind.InvalidConfiguration, () => other.WithLocalStaticPrivateKey(InitiatorStaticPrivate));
        Fails(NoiseErrorKind.InvalidConfiguration, () => other.WithLocalStaticKeyPair(pair));
    }

    [Fact]
    public void SettingTheRemoteStaticKeyTwiceIsInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(IK).WithRemoteStaticPublicKey(ResponderStaticPublic);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithRemoteStaticPublicKey(ResponderStaticPublic));
    }

    [Fact]
    public void SettingTheFixedEphemeralTwiceIsInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(XX).WithFixedEphemeralPrivateKeyForTestingOnly(OtherStaticPrivate);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithFixedEphemeralPrivateKeyForTestingOnly(OtherStaticPrivate));
    }

    [Theory]
    [InlineData("Noise_IK_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_NK_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_KK_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_XK_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_N_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_KK_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_KN_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_K_25519_ChaChaPoly_SHA256", false)]
    public void MissingRemoteStaticIsMissingPrerequisiteNamingIt(string name, bool initiator)
    {
        using var builder = new NoiseBuilder(name);
        if (HasStatic(builder.Protocol.Pattern, initiator))
        {
            builder.WithLocalStaticPrivateKey(initiator ? InitiatorStaticPrivate : ResponderStaticPrivate);
        }

        var exception = Fails(NoiseErrorKind.MissingPrerequisite, () => Build(builder, initiator));
        Assert.Contains("remote static", exception.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_IK_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_NK_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_XN_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_N_25519_ChaChaPoly_SHA256", false)]
    public void MissingLocalStaticIsMissingPrerequisiteNamingIt(string name, bool initiator)
    {
        using var builder = new NoiseBuilder(name);
        if (KnowsRemoteStatic(builder.Protocol.Pattern, initiator))
        {
            builder.WithRemoteStaticPublicKey(initiator ? ResponderStaticPublic : InitiatorStaticPublic);
        }

        var exception = Fails(NoiseErrorKind.MissingPrerequisite, () => Build(builder, initiator));
        Assert.Contains("local static", exception.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_NN_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_IK_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_NX_25519_ChaChaPoly_SHA256", true)]
    public void RemoteStaticGivenForAPatternThatTransmitsItIsInvalidConfiguration(string name, bool initiator)
    {
        using var builder = Configure(name, initiator);
        builder.WithRemoteStaticPublicKey(OtherStaticPublic);
        Fails(NoiseErrorKind.InvalidConfiguration, () => Build(builder, initiator));
    }

    [Theory]
    [InlineData("Noise_NN_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_NN_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_NK_25519_ChaChaPoly_SHA256", true)]
    [InlineData("Noise_XN_25519_ChaChaPoly_SHA256", false)]
    [InlineData("Noise_N_25519_ChaChaPoly_SHA256", true)]
    public void LocalStaticGivenForASideWithoutOneIsInvalidConfiguration(string name, bool initiator)
    {
        using var builder = Configure(name, initiator);
        builder.WithLocalStaticPrivateKey(OtherStaticPrivate);
        Fails(NoiseErrorKind.InvalidConfiguration, () => Build(builder, initiator));
    }

    [Fact]
    public void TooFewPsksIsMissingPrerequisite()
    {
        using var none = new NoiseBuilder(NNpsk0);
        Fails(NoiseErrorKind.MissingPrerequisite, () => none.BuildInitiator());

        using var one = new NoiseBuilder("Noise_XXpsk0+psk3_25519_ChaChaPoly_SHA256")
            .WithLocalStaticPrivateKey(InitiatorStaticPrivate)
            .WithPsk(Psk(0));
        var exception = Fails(NoiseErrorKind.MissingPrerequisite, () => one.BuildInitiator());
        Assert.Contains("pre-shared", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OnePskTooManyIsInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(NNpsk0).WithPsk(Psk(0));
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithPsk(Psk(1)));

        // The rejected extra key did not count: the builder still builds.
        using var state = builder.BuildInitiator();
        Assert.True(state.IsMyTurn);
    }

    [Fact]
    public void PskForAPatternWithoutPskIsInvalidConfiguration()
    {
        using var builder = new NoiseBuilder(NN);
        Fails(NoiseErrorKind.InvalidConfiguration, () => builder.WithPsk(Psk(0)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void WrongKeyLengthsAreInvalidKey(int length)
    {
        var key = new byte[length];
        using var builder = new NoiseBuilder(IK);
        Fails(NoiseErrorKind.InvalidKey, () => builder.WithLocalStaticPrivateKey(key));
        Fails(NoiseErrorKind.InvalidKey, () => builder.WithRemoteStaticPublicKey(key));
        Fails(NoiseErrorKind.InvalidKey, () => builder.WithFixedEphemeralPrivateKeyForTestingOnly(key));

        using var pskBuilder = new NoiseBuilder(NNpsk0);
        Fails(NoiseErrorKind.InvalidKey, () => pskBuilder.WithPsk(key));

        // A rejected key is not half-set: the right one is still accepted afterwards.
        builder.WithLocalStaticPrivateKey(InitiatorStaticPrivate).WithRemoteStaticPublicKey(ResponderStaticPublic);
        pskBuilder.WithPsk(Psk(0));
        using var ik = builder.BuildInitiator();
        using var psk = pskBuilder.BuildInitiator();
    }

    [Fact]
    public void WrongCipherKeyLengthIsInvalidKey()
    {
        Fails(NoiseErrorKind.InvalidKey, () => AeadCipher.ChaChaPoly.CreateKey(new byte[31]));
        Fails(NoiseErrorKind.InvalidKey, () => AeadCipher.Only("AESGCM", AeadImplementation.Platform)!.CreateKey(new byte[33]));
        Fails(NoiseErrorKind.InvalidKey, () => Curve25519Dh.Instance.ImportPrivateKey(new byte[31]));
    }

    [Fact]
    public void UsingABuilderAfterDisposeThrowsObjectDisposedException()
    {
        // Dispose wipes the key copies: building from zeros instead would silently use an all-zero psk.
        var builder = new NoiseBuilder(NNpsk0).WithPsk(Psk(0));
        builder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => builder.BuildInitiator());
        Assert.Throws<ObjectDisposedException>(() => builder.WithPrologue([]));
        Assert.Throws<ObjectDisposedException>(() => builder.WithPsk(Psk(1)));
        builder.Dispose();
    }

    [Fact]
    public void OneBuilderCanBuildSeveralIndependentHandshakes()
    {
        using var initiatorBuilder = Configure(XX, initiator: true);
        using var responderBuilder = Configure(XX, initiator: false);
        for (var i = 0; i < 2; i++)
        {
            using var initiator = initiatorBuilder.BuildInitiator();
            using var responder = responderBuilder.BuildResponder();
            RunHandshake(initiator, responder);
            Assert.Equal(ResponderStaticPublic, initiator.RemoteStaticPublicKey.ToArray());
        }
    }

    [Fact]
    public void BorrowedStaticKeyPairWorksAndOutlivesTheHandshakesThatUsedIt()
    {
        using var pair = Curve25519Dh.Instance.ImportPrivateKey(ResponderStaticPrivate);
        for (var i = 0; i < 2; i++)
        {
            using var responderBuilder = new NoiseBuilder(XX).WithPrologue(Prologue).WithLocalStaticKeyPair(pair);
            using var responder = responderBuilder.BuildResponder();
            using var initiator = BuildInitiator(XX);
            RunHandshake(initiator, responder);
            Assert.Equal(ResponderStaticPublic, initiator.RemoteStaticPublicKey.ToArray());
            using var a = initiator.ToTransport();
            using var b = responder.ToTransport();
            Assert.Equal([1], Open(b, Seal(a, [1])));
        }

        // The handshakes (and transports) are disposed; the caller's key pair is not.
        Assert.Equal(ResponderStaticPublic, pair.PublicKey.ToArray());
        var shared = new byte[32];
        Curve25519Dh.Instance.Agree(pair, InitiatorStaticPublic, shared);
        Assert.NotEqual(new byte[32], shared);
    }

    [Fact]
    public void BuilderKeepsItsOwnCopiesOfTheKeys()
    {
        var psk = Psk(0);
        using var initiatorBuilder = new NoiseBuilder(NNpsk0).WithPsk(psk);
        Array.Clear(psk);
        using var responderBuilder = new NoiseBuilder(NNpsk0).WithPsk(Psk(0));
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = responderBuilder.BuildResponder();
        RunHandshake(initiator, responder);
    }

    [Fact]
    public void ProtocolPropertyIsTheParsedProtocol()
    {
        var protocol = NoiseProtocol.Parse(XX);
        using var builder = new NoiseBuilder(protocol);
        Assert.Same(protocol, builder.Protocol);
        Assert.Throws<ArgumentNullException>(() => new NoiseBuilder((NoiseProtocol)null!));
    }

    private static HandshakeState Build(NoiseBuilder builder, bool initiator) =>
        initiator ? builder.BuildInitiator() : builder.BuildResponder();
}
