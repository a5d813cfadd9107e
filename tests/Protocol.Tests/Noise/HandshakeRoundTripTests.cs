using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Our initiator against our responder, in memory, over every pattern and every cipher/hash pair.</summary>
public sealed class HandshakeRoundTripTests
{
    private static readonly string[] Ciphers = ["ChaChaPoly", "AESGCM"];
    private static readonly string[] Hashes = ["SHA256", "SHA512", "BLAKE2b", "BLAKE2s"];

    private static readonly string[] PskPatterns =
    [
        "NNpsk0", "NNpsk2", "NKpsk0", "NKpsk2", "NXpsk2", "XNpsk3", "XKpsk3", "XXpsk3", "KNpsk0", "KNpsk2",
        "KKpsk0", "KKpsk2", "KXpsk2", "INpsk1", "INpsk2", "IKpsk1", "IKpsk2", "IXpsk2", "Npsk0", "Kpsk0", "Xpsk1",
        "XXpsk0+psk3", "NNpsk0+psk2", "NXpsk0+psk1+psk2", "IKpsk0+psk2", "XXpsk0+psk1+psk2+psk3", "X1X1psk3",
    ];

    public static TheoryData<string, string, string> EveryPatternEverySuite()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var pattern in HandshakePattern.BaseNames.Order(StringComparer.Ordinal).Concat(PskPatterns))
        {
            foreach (var cipher in Ciphers)
            {
                foreach (var hash in Hashes)
                {
                    data.Add(pattern, cipher, hash);
                }
            }
        }

        return data;
    }

    public static TheoryData<string, string> EverySuite()
    {
        var data = new TheoryData<string, string>();
        foreach (var cipher in Ciphers)
        {
            foreach (var hash in Hashes)
            {
                data.Add(cipher, hash);
            }
        }

        return data;
    }

    [Fact]
    public void TheMatrixCoversTheFundamentalOneWayAndDeferredPatterns()
    {
        // Guards the theory data itself: a shrinking pattern table would silently shrink the coverage.
        string[] required = ["NN", "NK", "NX", "XN", "XK", "XX", "KN", "KK", "KX", "IN", "IK", "IX", "N", "K", "X", "NK1", "X1X1", "I1K1", "K1X"];
        var patterns = EveryPatternEverySuite().Select(row => (string)row[0]).ToHashSet(StringComparer.Ordinal);
        Assert.Superset(required.ToHashSet(StringComparer.Ordinal), patterns);
        Assert.Equal(38, HandshakePattern.BaseNames.Count());
    }

    [Theory]
    [MemberData(nameof(EveryPatternEverySuite))]
    public void HandshakeCompletesWithSharedHashKnownStaticsAndWorkingTransport(string pattern, string cipher, string hash)
    {
        var name = $"Noise_{pattern}_25519_{cipher}_{hash}";
        using var initiatorHandshake = BuildInitiator(name);
        using var responderHandshake = BuildResponder(name);
        var parsed = initiatorHandshake.Protocol.Pattern;

        Assert.True(initiatorHandshake.IsInitiator);
        Assert.False(responderHandshake.IsInitiator);
        RunHandshake(initiatorHandshake, responderHandshake);

        using var initiator = initiatorHandshake.ToTransport();
        using var responder = responderHandshake.ToTransport();

        Assert.Equal(initiatorHandshake.Protocol.Hash.HashLength, initiator.HandshakeHash.Length);
        Assert.Equal(initiator.HandshakeHash.ToArray(), responder.HandshakeHash.ToArray());
        Assert.Equal(HasStatic(parsed, initiator: false) ? ResponderStaticPublic : [], initiator.RemoteStaticPublicKey.ToArray());
        Assert.Equal(HasStatic(parsed, initiator: true) ? InitiatorStaticPublic : [], responder.RemoteStaticPublicKey.ToArray());

        // Initiator to responder, several messages so the nonces must stay in step.
        for (var i = 0; i < 3; i++)
        {
            var payload = Bytes($"i2r {i}", 1 + (i * 40));
            Assert.Equal((ulong)i, initiator.SendingNonce);
            Assert.Equal(payload, Open(responder, Seal(initiator, payload)));
            Assert.Equal((ulong)(i + 1), responder.ReceivingNonce);
        }

        if (parsed.IsOneWay)
        {
            Assert.True(parsed.Messages.All(m => m.FromInitiator));
            var message = new byte[64];
            Fails(NoiseErrorKind.WrongState, () => responder.Write([1, 2, 3], message));
            Fails(NoiseErrorKind.WrongState, () => initiator.Read(new byte[32], new byte[32]));
            Fails(NoiseErrorKind.WrongState, responder.RekeySending);
            Fails(NoiseErrorKind.WrongState, initiator.RekeyReceiving);
        }
        else
        {
            for (var i = 0; i < 3; i++)
            {
                var payload = Bytes($"r2i {i}", i * 17);
                Assert.Equal(payload, Open(initiator, Seal(responder, payload)));
            }

            // The two directions use different keys: a message cannot be reflected back to its sender.
            var reflected = Seal(initiator, [9, 9, 9]);
            Fails(NoiseErrorKind.DecryptFailed, () => initiator.Read(reflected, new byte[3]));
        }
    }

    [Theory]
    [MemberData(nameof(EverySuite))]
    public void StatelessTransportWorksAfterEveryHandshakeSuite(string cipher, string hash)
    {
        var name = $"Noise_XX_25519_{cipher}_{hash}";
        var (initiator, responder) = StatelessTransports(name);
        using (initiator)
        using (responder)
        {
            Assert.Equal(initiator.HandshakeHash.ToArray(), responder.HandshakeHash.ToArray());
            Assert.Equal(ResponderStaticPublic, initiator.RemoteStaticPublicKey.ToArray());
            Assert.Equal(InitiatorStaticPublic, responder.RemoteStaticPublicKey.ToArray());

            var framed = new byte[StatelessNoiseTransport.NonceLength + 5 + NoiseConstants.TagLength];
            var payload = new byte[5];
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(framed.Length, initiator.WriteNext([1, 2, 3, 4, (byte)i], framed));
                Assert.Equal((ulong)i, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(framed));
                Assert.Equal(5, responder.ReadWithNonce(framed, payload));
                Assert.Equal([1, 2, 3, 4, (byte)i], payload);

                Assert.Equal(framed.Length, responder.WriteNext([5, 6, 7, 8, (byte)i], framed));
                Assert.Equal(5, initiator.ReadWithNonce(framed, payload));
                Assert.Equal([5, 6, 7, 8, (byte)i], payload);
            }
        }
    }

    [Theory]
    [MemberData(nameof(EverySuite))]
    public void FallbackAfterIkWithStaleResponderKeyCompletesAsXXfallback(string cipher, string hash)
    {
        var ikName = $"Noise_IK_25519_{cipher}_{hash}";
        var fallbackName = $"Noise_XXfallback_25519_{cipher}_{hash}";
        var message = new byte[1024];
        var payload = new byte[1024];

        // Alice believes Bob's static key is OtherStaticPublic: Bob cannot read her IK message.
        using var aliceBuilder = Configure(ikName, initiator: true, remoteStaticOverride: OtherStaticPublic);
        using var aliceIk = aliceBuilder.BuildInitiator();
        using var bobIk = BuildResponder(ikName);
        var written = aliceIk.WriteMessage([1, 2, 3], message);
        Fails(NoiseErrorKind.DecryptFailed, () => bobIk.ReadMessage(message.AsSpan(0, written), payload));

        // Bob switches to XXfallback with the ephemeral Alice already sent; Alice follows on seeing his reply.
        using var bobFallbackBuilder = new NoiseBuilder(fallbackName).WithPrologue(Prologue);
        using var bob = bobFallbackBuilder.BuildFallback(bobIk);
        using var aliceFallbackBuilder = new NoiseBuilder(fallbackName).WithPrologue(Prologue);
        using var alice = aliceFallbackBuilder.BuildFallback(aliceIk);

        Assert.True(alice.IsInitiator);
        Assert.False(bob.IsInitiator);
        Assert.True(bob.IsMyTurn);
        Assert.False(alice.IsMyTurn);
        Assert.Equal(alice.HandshakeHash.ToArray(), bob.HandshakeHash.ToArray());

        RunHandshake(alice, bob);
        using var aliceTransport = alice.ToTransport();
        using var bobTransport = bob.ToTransport();
        Assert.Equal(aliceTransport.HandshakeHash.ToArray(), bobTransport.HandshakeHash.ToArray());
        Assert.Equal(ResponderStaticPublic, aliceTransport.RemoteStaticPublicKey.ToArray());
        Assert.Equal(InitiatorStaticPublic, bobTransport.RemoteStaticPublicKey.ToArray());
        Assert.Equal([4, 5, 6], Open(bobTransport, Seal(aliceTransport, [4, 5, 6])));
        Assert.Equal([7, 8], Open(aliceTransport, Seal(bobTransport, [7, 8])));
    }

    [Fact]
    public void FallbackFromAStateThatNeverSentItsEphemeralIsMissingPrerequisite()
    {
        using var aliceBuilder = Configure(IK, initiator: true);
        using var aliceIk = aliceBuilder.BuildInitiator();
        using var fallback = new NoiseBuilder("Noise_XXfallback_25519_ChaChaPoly_SHA256");
        Fails(NoiseErrorKind.MissingPrerequisite, () => fallback.BuildFallback(aliceIk));
    }

    [Fact]
    public void BuildFallbackWithANonFallbackProtocolIsInvalidConfiguration()
    {
        using var aliceBuilder = Configure(IK, initiator: true);
        using var aliceIk = aliceBuilder.BuildInitiator();
        aliceIk.WriteMessage([], new byte[256]);
        using var notFallback = new NoiseBuilder(XX);
        Fails(NoiseErrorKind.InvalidConfiguration, () => notFallback.BuildFallback(aliceIk));
    }

    [Fact]
    public void FallbackPatternCannotBeBuiltAsAnOrdinaryInitiator()
    {
        // XXfallback's initiator pre-message is her ephemeral key, which only a failed handshake can supply.
        using var builder = new NoiseBuilder("Noise_XXfallback_25519_ChaChaPoly_SHA256").WithLocalStaticPrivateKey(InitiatorStaticPrivate);
        Fails(NoiseErrorKind.MissingPrerequisite, () => builder.BuildInitiator());
    }

    [Fact]
    public void EachHandshakeUsesFreshEphemeralsSoHashesDifferBetweenRuns()
    {
        var (a, b) = Transports(NN);
        var (c, d) = Transports(NN);
        using (a)
        using (b)
        using (c)
        using (d)
        {
            Assert.NotEqual(a.HandshakeHash.ToArray(), c.HandshakeHash.ToArray());
        }
    }

    [Fact]
    public void PlatformAesGcmBackendCompletesAHandshakeAndInteroperatesWithTheDefaultBackend()
    {
        const string name = "Noise_XX_25519_AESGCM_SHA256";
        using var initiator = BuildInitiator(name, BclAesResolver);
        using var responder = BuildResponder(name);
        RunHandshake(initiator, responder);
        using var a = initiator.ToTransport();
        using var b = responder.ToTransport();
        Assert.Equal([1, 2, 3], Open(b, Seal(a, [1, 2, 3])));
        Assert.Equal([4, 5, 6], Open(a, Seal(b, [4, 5, 6])));
    }
}
