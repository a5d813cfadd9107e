using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Transport encryption and decryption in place (payload and message in the same memory), for every AEAD backend.</summary>
public sealed class InPlaceTests
{
    /// <summary>Cipher name and resolver: the default backends, and the platform AES-GCM forced.</summary>
    public static TheoryData<string, string> Backends() => new()
    {
        { "ChaChaPoly", "default" },
        { "AESGCM", "default" },
        { "AESGCM", "BCL" },
    };

    private static ICryptoResolver? Resolver(string backend) => backend == "BCL" ? BclAesResolver : null;

    [Theory]
    [MemberData(nameof(Backends))]
    public void TransportEncryptsAndDecryptsInPlace(string cipher, string backend)
    {
        var (initiator, responder) = Transports($"Noise_NN_25519_{cipher}_SHA256", Resolver(backend));
        using (initiator)
        using (responder)
        {
            foreach (var length in new[] { 0, 1, 15, 16, 17, 64, 1000, NoiseConstants.MaxTransportPayloadLength })
            {
                var payload = Bytes($"in place {length}", length);
                var buffer = new byte[length + NoiseConstants.TagLength];
                payload.CopyTo(buffer, 0);

                var written = initiator.Write(buffer.AsSpan(0, length), buffer);
                Assert.Equal(buffer.Length, written);
                Assert.False(length > 0 && buffer.AsSpan(0, length).SequenceEqual(payload), "the payload was not encrypted");

                var read = responder.Read(buffer, buffer);
                Assert.Equal(length, read);
                Assert.Equal(payload, buffer.AsSpan(0, length).ToArray());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void InPlaceAndOutOfPlaceMessagesAreInterchangeable(string cipher, string backend)
    {
        var (initiator, responder) = StatelessTransports($"Noise_NN_25519_{cipher}_SHA256", Resolver(backend));
        using (initiator)
        using (responder)
        {
            var payload = Bytes("compare", 100);
            var outOfPlace = new byte[116];
            initiator.Write(0, payload, outOfPlace);

            // Encrypted out of place, decrypted in place...
            var inPlace = (byte[])outOfPlace.Clone();
            Assert.Equal(100, responder.Read(0, inPlace, inPlace));
            Assert.Equal(payload, inPlace[..100]);

            // ...and encrypted in place, decrypted out of place.
            var second = new byte[116];
            payload.CopyTo(second, 0);
            initiator.Write(1, second.AsSpan(0, 100), second);
            var copy = new byte[100];
            Assert.Equal(100, responder.Read(1, second, copy));
            Assert.Equal(payload, copy);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void InPlaceTamperedMessageFailsAndTheNonceStays(string cipher, string backend)
    {
        var (initiator, responder) = Transports($"Noise_NN_25519_{cipher}_SHA256", Resolver(backend));
        using (initiator)
        using (responder)
        {
            var payload = Bytes("tamper in place", 33);
            var genuine = Seal(initiator, payload);
            var forged = (byte[])genuine.Clone();
            forged[5] ^= 0x10;
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(forged, forged));
            Assert.False(responder.TryRead(forged, forged, out var written));
            Assert.Equal(0, written);
            Assert.Equal(0UL, responder.ReceivingNonce);

            Assert.Equal(33, responder.Read(genuine, genuine));
            Assert.Equal(payload, genuine[..33]);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CipherKeyEncryptsAndDecryptsInPlace(string cipher, string backend)
    {
        NoiseCipher noiseCipher = (cipher, backend) switch
        {
            ("ChaChaPoly", _) => AeadCipher.ChaChaPoly,
            ("AESGCM", "BCL") => AeadCipher.Only("AESGCM", AeadImplementation.Platform)!,
            _ => (NoiseCipher?)AeadCipher.Only("AESGCM", AeadImplementation.Libsodium) ?? AeadCipher.Only("AESGCM", AeadImplementation.Platform)!,
        };
        using var key = noiseCipher.CreateKey(Bytes("key", 32));
        var plaintext = Bytes("plain", 50);
        var expected = new byte[66];
        key.Encrypt(9, [1, 2], plaintext, expected);

        var buffer = new byte[66];
        plaintext.CopyTo(buffer, 0);
        key.Encrypt(9, [1, 2], buffer.AsSpan(0, 50), buffer);
        Assert.Equal(expected, buffer);

        Assert.True(key.TryDecrypt(9, [1, 2], buffer, buffer));
        Assert.Equal(plaintext, buffer[..50]);
    }
}
