using System.Buffers.Binary;
using NSec.Cryptography;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>
/// The primitives we call directly (libsodium's X25519 and AEADs, the platform's AEADs for large records) against
/// NSec's, an independent path to the same functions: equal outputs on both sides of
/// <see cref="AeadCipher.LargeMessageThreshold"/>, each opening what the others sealed.
/// </summary>
public sealed class PrimitiveEquivalenceTests
{
    private static readonly int[] Sizes = [0, 1, 64, 1024, AeadCipher.LargeMessageThreshold - 1, AeadCipher.LargeMessageThreshold, AeadCipher.LargeMessageThreshold + 1, 65535, 1 << 20];

    public static TheoryData<string, int> CipherSizes()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in new[] { "ChaChaPoly", "AESGCM" })
        {
            foreach (var size in Sizes)
            {
                data.Add(name, size);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CipherSizes))]
    public void EveryImplementationSealsAsNSecAndOpensTheOthers(string name, int size)
    {
        var key = Bytes("aead key", 32);
        var ad = Bytes("associated data", 37);
        var plaintext = Bytes("plaintext", size);
        const ulong nonce = 0x0102030405060708;
        var expected = NSecSeal(name, key, nonce, ad, plaintext);
        var implementations = new List<NoiseCipher?> { name == "ChaChaPoly" ? AeadCipher.ChaChaPoly : AeadCipher.AesGcm, AeadCipher.Only(name, AeadImplementation.Libsodium), AeadCipher.Only(name, AeadImplementation.Platform) }
            .OfType<NoiseCipher>()
            .ToList();
        Assert.True(implementations.Count >= 2, "at least the default and one single implementation run here");

        foreach (var sealer in implementations)
        {
            using var sealing = sealer.CreateKey(key);
            var ciphertext = new byte[size + NoiseConstants.TagLength];
            sealing.Encrypt(nonce, ad, plaintext, ciphertext);
            Assert.Equal(expected, ciphertext);

            foreach (var opener in implementations)
            {
                using var opening = opener.CreateKey(key);
                var opened = new byte[size];
                Assert.True(opening.TryDecrypt(nonce, ad, ciphertext, opened));
                Assert.Equal(plaintext, opened);

                var forged = (byte[])ciphertext.Clone();
                forged[^1] ^= 0x01;
                Assert.False(opening.TryDecrypt(nonce, ad, forged, new byte[size]));
                Assert.False(opening.TryDecrypt(nonce + 1, ad, ciphertext, new byte[size]));
            }
        }
    }

    [Theory]
    [MemberData(nameof(CipherSizes))]
    public void SealingAndOpeningInPlaceGiveTheSameBytes(string name, int size)
    {
        var cipher = name == "ChaChaPoly" ? AeadCipher.ChaChaPoly : AeadCipher.AesGcm!;
        using var key = cipher.CreateKey(Bytes("in place", 32));
        var plaintext = Bytes("plain", size);
        var expected = new byte[size + NoiseConstants.TagLength];
        key.Encrypt(7, [], plaintext, expected);

        var buffer = new byte[size + NoiseConstants.TagLength];
        plaintext.CopyTo(buffer, 0);
        key.Encrypt(7, [], buffer.AsSpan(0, size), buffer);
        Assert.Equal(expected, buffer);

        Assert.True(key.TryDecrypt(7, [], buffer, buffer));
        Assert.Equal(plaintext, buffer[..size]);
    }

    [Fact]
    public void ADisposedCipherKeyRefusesToWork()
    {
        var key = AeadCipher.ChaChaPoly.CreateKey(Bytes("k", 32));
        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => key.Encrypt(0, [], new byte[1], new byte[17]));
    }

    [Fact]
    public void X25519MatchesNSecForFreshAndImportedKeys()
    {
        for (var i = 0; i < 20; i++)
        {
            using var nsecKey = Key.Create(KeyAgreementAlgorithm.X25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
            using var ours = Curve25519Dh.Instance.ImportPrivateKey(nsecKey.Export(KeyBlobFormat.RawPrivateKey));
            Assert.Equal(nsecKey.PublicKey.Export(KeyBlobFormat.RawPublicKey), ours.PublicKey.ToArray());

            using var peer = Curve25519Dh.Instance.GenerateKeyPair();
            var shared = new byte[32];
            Curve25519Dh.Instance.Agree(ours, peer.PublicKey, shared);
            var reverse = new byte[32];
            Curve25519Dh.Instance.Agree(peer, ours.PublicKey, reverse);
            Assert.Equal(shared, reverse);

            var nsecPeer = PublicKey.Import(KeyAgreementAlgorithm.X25519, peer.PublicKey, KeyBlobFormat.RawPublicKey);
            using var nsecShared = KeyAgreementAlgorithm.X25519.Agree(nsecKey, nsecPeer, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport })!;
            Assert.Equal(nsecShared.Export(SharedSecretBlobFormat.RawSharedSecret), shared);
        }
    }

    [Fact]
    public void X25519MatchesRfc7748()
    {
        // RFC 7748 §6.1: Alice's private key, Bob's public key, and their shared secret.
        using var alice = Curve25519Dh.Instance.ImportPrivateKey(Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexStringLower(alice.PublicKey));
        var shared = new byte[32];
        Curve25519Dh.Instance.Agree(alice, Convert.FromHexString("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"), shared);
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Convert.ToHexStringLower(shared));
    }

    [Fact]
    public void ADisposedKeyPairRefusesToAgree()
    {
        var pair = Curve25519Dh.Instance.GenerateKeyPair();
        using var peer = Curve25519Dh.Instance.GenerateKeyPair();
        pair.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Curve25519Dh.Instance.Agree(pair, peer.PublicKey, new byte[32]));
    }

    private static byte[] NSecSeal(string name, byte[] keyBytes, ulong counter, byte[] ad, byte[] plaintext)
    {
        var algorithm = name == "ChaChaPoly" ? (AeadAlgorithm)AeadAlgorithm.ChaCha20Poly1305 : AeadAlgorithm.Aes256Gcm;
        var nonce = new byte[12];
        if (name == "ChaChaPoly")
        {
            BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(4), counter);
        }
        else
        {
            BinaryPrimitives.WriteUInt64BigEndian(nonce.AsSpan(4), counter);
        }

        using var key = Key.Import(algorithm, keyBytes, KeyBlobFormat.RawSymmetricKey);
        return algorithm.Encrypt(key, nonce, ad, plaintext);
    }
}
