using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Secrets never appear in ToString or in exception text.</summary>
public sealed class KeyHygieneTests
{
    private const string NNpsk0 = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";

    [Fact]
    public void DhKeyPairToStringShowsAtMostThePublicKey()
    {
        using var imported = Curve25519Dh.Instance.ImportPrivateKey(InitiatorStaticPrivate);
        AssertNoSecret(imported.ToString(), InitiatorStaticPrivate);

        using var generated = Curve25519Dh.Instance.GenerateKeyPair();
        Assert.NotNull(generated.ToString());
    }

    [Fact]
    public void CipherKeyToStringNeverShowsTheKey()
    {
        var key = Bytes("cipher key to hide", 32);
        var ciphers = new List<NoiseCipher?> { AeadCipher.ChaChaPoly, AeadCipher.AesGcm };
        foreach (var name in new[] { "ChaChaPoly", "AESGCM" })
        {
            ciphers.Add(AeadCipher.Only(name, AeadImplementation.Libsodium));
            ciphers.Add(AeadCipher.Only(name, AeadImplementation.Platform));
        }

        foreach (var cipher in ciphers.OfType<NoiseCipher>())
        {
            using var keyed = cipher.CreateKey(key);
            AssertNoSecret(keyed.ToString()!, key);
        }
    }

    [Fact]
    public void StatesAndTransportsDoNotPrintSecrets()
    {
        using var builder = Configure("Noise_XXpsk3_25519_ChaChaPoly_SHA256", initiator: true);
        AssertNoSecret(builder.ToString()!, InitiatorStaticPrivate, Psk(0));
        using var initiator = builder.BuildInitiator();
        using var responder = BuildResponder("Noise_XXpsk3_25519_ChaChaPoly_SHA256");
        AssertNoSecret(initiator.ToString()!, InitiatorStaticPrivate, Psk(0));
        RunHandshake(initiator, responder);
        using var transport = initiator.ToTransport();
        AssertNoSecret(transport.ToString()!, InitiatorStaticPrivate, Psk(0));
    }

    [Fact]
    public void MismatchedPskErrorDoesNotContainThePskOrStaticKeys()
    {
        const string name = "Noise_XXpsk3_25519_ChaChaPoly_SHA256";
        var wrongPsk = Bytes("the other psk", 32);
        using var initiator = BuildInitiator(name);
        using var responderBuilder = Configure(name, initiator: false, psk: _ => wrongPsk);
        using var responder = responderBuilder.BuildResponder();
        var message = new byte[256];
        var exceptions = new List<Exception>();
        for (var index = 0; index < 3; index++)
        {
            var (writer, reader) = initiator.IsMyTurn ? (initiator, responder) : (responder, initiator);
            var written = writer.WriteMessage([], message);
            var error = Record.Exception(() => reader.ReadMessage(message.AsSpan(0, written), new byte[256]));
            if (error is not null)
            {
                var retry = Record.Exception(() => reader.ReadMessage(message.AsSpan(0, written), new byte[256]));
                Assert.NotNull(retry);
                exceptions.Add(error);
                exceptions.Add(retry);
                break;
            }
        }

        Assert.Equal(2, exceptions.Count);
        foreach (var exception in exceptions)
        {
            AssertNoSecret(exception.ToString(), Psk(0), wrongPsk, InitiatorStaticPrivate, ResponderStaticPrivate);
        }
    }

    [Fact]
    public void WrongStaticKeyErrorDoesNotContainTheStaticPrivateKeys()
    {
        using var initiatorBuilder = Configure(IK, initiator: true, remoteStaticOverride: OtherStaticPublic);
        using var initiator = initiatorBuilder.BuildInitiator();
        using var responder = BuildResponder(IK);
        var message = new byte[256];
        var written = initiator.WriteMessage([], message);
        var exception = Assert.Throws<NoiseException>(() => responder.ReadMessage(message.AsSpan(0, written), new byte[256]));
        AssertNoSecret(exception.ToString(), InitiatorStaticPrivate, ResponderStaticPrivate, OtherStaticPrivate);
    }

    [Fact]
    public void BuilderErrorsDoNotContainTheKeysTheyReject()
    {
        var psk = Psk(0);
        using var pskBuilder = new NoiseBuilder(NNpsk0).WithPsk(psk);
        AssertNoSecret(Assert.Throws<NoiseException>(() => pskBuilder.WithPsk(psk)).ToString(), psk);
        var shortPsk = psk[..31];
        AssertNoSecret(Assert.Throws<NoiseException>(() => new NoiseBuilder(NNpsk0).WithPsk(shortPsk)).ToString(), shortPsk);

        using var staticBuilder = new NoiseBuilder(XX).WithLocalStaticPrivateKey(InitiatorStaticPrivate);
        AssertNoSecret(Assert.Throws<NoiseException>(() => staticBuilder.WithLocalStaticPrivateKey(InitiatorStaticPrivate)).ToString(), InitiatorStaticPrivate);
        var longKey = InitiatorStaticPrivate.Concat(InitiatorStaticPrivate).ToArray();
        AssertNoSecret(Assert.Throws<NoiseException>(() => new NoiseBuilder(XX).WithLocalStaticPrivateKey(longKey)).ToString(), longKey);

        using var superfluous = new NoiseBuilder(NN).WithLocalStaticPrivateKey(InitiatorStaticPrivate);
        AssertNoSecret(Assert.Throws<NoiseException>(() => superfluous.BuildInitiator()).ToString(), InitiatorStaticPrivate);
    }

    [Fact]
    public void TransportDecryptErrorDoesNotContainPayloadOrKeys()
    {
        var (initiator, responder) = Transports("Noise_NNpsk0_25519_ChaChaPoly_SHA256");
        using (initiator)
        using (responder)
        {
            var payload = Bytes("secret payload", 40);
            var message = Seal(initiator, payload);
            message[^1] ^= 1;
            var exception = Assert.Throws<NoiseException>(() => responder.Read(message, new byte[40]));
            AssertNoSecret(exception.ToString(), payload, Psk(0));
        }
    }

    private static void AssertNoSecret(string text, params byte[][] secrets)
    {
        foreach (var secret in secrets)
        {
            // A leak in any common encoding, or even its first 8 bytes, counts.
            string[] encodings =
            [
                Convert.ToHexStringLower(secret),
                Convert.ToHexString(secret),
                Convert.ToBase64String(secret),
                Convert.ToHexStringLower(secret.AsSpan(0, Math.Min(8, secret.Length))),
                Convert.ToHexString(secret.AsSpan(0, Math.Min(8, secret.Length))),
                BitConverter.ToString(secret.AsSpan(0, Math.Min(8, secret.Length)).ToArray()),
            ];
            foreach (var encoding in encodings)
            {
                Assert.DoesNotContain(encoding, text, StringComparison.Ordinal);
            }
        }
    }
}
