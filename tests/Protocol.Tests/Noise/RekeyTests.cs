using System.Buffers.Binary;
using NSec.Cryptography;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>REKEY (spec §4.2, §11.3): on the transport and on CipherState against an independent computation.</summary>
public sealed class RekeyTests
{
    private static readonly byte[] Key = Bytes("cipher key", 32);
    private static readonly byte[] Plaintext = Bytes("plaintext", 45);
    private static readonly byte[] AssociatedData = Bytes("ad", 11);

    [Theory]
    [InlineData("ChaChaPoly")]
    [InlineData("AESGCM")]
    public void MatchingRekeysOnBothSidesKeepMessagesFlowingInBothDirections(string cipher)
    {
        var (initiator, responder) = Transports($"Noise_XX_25519_{cipher}_BLAKE2s");
        using (initiator)
        using (responder)
        {
            Assert.Equal([1], Open(responder, Seal(initiator, [1])));
            Assert.Equal([2], Open(initiator, Seal(responder, [2])));

            initiator.RekeySending();
            responder.RekeyReceiving();
            Assert.Equal([3], Open(responder, Seal(initiator, [3])));

            // Only one direction was rekeyed; the other still uses its old key.
            Assert.Equal([4], Open(initiator, Seal(responder, [4])));

            responder.RekeySending();
            initiator.RekeyReceiving();
            Assert.Equal([5], Open(initiator, Seal(responder, [5])));
            Assert.Equal([6], Open(responder, Seal(initiator, [6])));

            // Rekeying keeps the nonce: two messages were sent each way before and after.
            Assert.Equal(3UL, initiator.SendingNonce);
            Assert.Equal(3UL, responder.ReceivingNonce);
        }
    }

    [Theory]
    [InlineData("ChaChaPoly")]
    [InlineData("AESGCM")]
    public void RekeyOnOnlyOneSideMakesDecryptionFailWithoutAdvancingTheNonce(string cipher)
    {
        var (initiator, responder) = Transports($"Noise_NN_25519_{cipher}_SHA256");
        using (initiator)
        using (responder)
        {
            initiator.RekeySending();
            var message = Seal(initiator, [1, 2, 3]);
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(message, new byte[3]));
            Assert.Equal(0UL, responder.ReceivingNonce);

            // Catching up with the rekey makes the very same message readable.
            responder.RekeyReceiving();
            Assert.Equal([1, 2, 3], Open(responder, message));
        }
    }

    [Fact]
    public void RekeyingTheReceiverWithoutTheSenderAlsoFails()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            responder.RekeyReceiving();
            var message = Seal(initiator, [1, 2, 3]);
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(message, new byte[3]));
        }
    }

    [Fact]
    public void ChaChaPolyRekeyIsFirst32BytesOfEncryptionOfZerosUnderMaxNonceAndKeepsTheNonce()
    {
        using var state = new CipherState(AeadCipher.ChaChaPoly);
        state.InitializeKey(Key);
        state.SetNonce(5);
        state.Rekey();
        Assert.Equal(5UL, state.Nonce);

        var actual = new byte[Plaintext.Length + NoiseConstants.TagLength];
        state.EncryptWithAd(AssociatedData, Plaintext, actual);
        Assert.Equal(6UL, state.Nonce);

        // Independently, with NSec directly: ChaChaPoly's nonce is 32 zero bits then the counter little-endian.
        var algorithm = AeadAlgorithm.ChaCha20Poly1305;
        byte[] rekeyed;
        using (var original = NSec.Cryptography.Key.Import(algorithm, Key, KeyBlobFormat.RawSymmetricKey))
        {
            rekeyed = algorithm.Encrypt(original, ChaChaNonce(ulong.MaxValue), [], new byte[32])[..32];
        }

        using var next = NSec.Cryptography.Key.Import(algorithm, rekeyed, KeyBlobFormat.RawSymmetricKey);
        var expected = algorithm.Encrypt(next, ChaChaNonce(5), AssociatedData, Plaintext);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(AesGcmBackends))]
    public void AesGcmRekeyIsFirst32BytesOfEncryptionOfZerosUnderMaxNonceAndKeepsTheNonce(string backend)
    {
        using var state = new CipherState(AesBackend(backend));
        state.InitializeKey(Key);
        state.SetNonce(7);
        state.Rekey();
        Assert.Equal(7UL, state.Nonce);

        var actual = new byte[Plaintext.Length + NoiseConstants.TagLength];
        state.EncryptWithAd(AssociatedData, Plaintext, actual);

        // Independently, with the BCL: AESGCM's nonce is 32 zero bits then the counter big-endian.
        var rekeyed = new byte[32];
        using (var original = new System.Security.Cryptography.AesGcm(Key, NoiseConstants.TagLength))
        {
            original.Encrypt(AesNonce(ulong.MaxValue), new byte[32], rekeyed, new byte[NoiseConstants.TagLength]);
        }

        var expected = new byte[actual.Length];
        using (var next = new System.Security.Cryptography.AesGcm(rekeyed, NoiseConstants.TagLength))
        {
            next.Encrypt(AesNonce(7), Plaintext, expected.AsSpan(0, Plaintext.Length), expected.AsSpan(Plaintext.Length), AssociatedData);
        }

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void RekeyChangesTheKeyEvenAtTheSameNonce()
    {
        using var plain = new CipherState(AeadCipher.ChaChaPoly);
        using var rekeyed = new CipherState(AeadCipher.ChaChaPoly);
        plain.InitializeKey(Key);
        rekeyed.InitializeKey(Key);
        rekeyed.Rekey();
        var a = new byte[Plaintext.Length + 16];
        var b = new byte[Plaintext.Length + 16];
        plain.EncryptWithAd(default, Plaintext, a);
        rekeyed.EncryptWithAd(default, Plaintext, b);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void RekeyWithoutAKeyIsWrongState()
    {
        using var state = new CipherState(AeadCipher.ChaChaPoly);
        Fails(NoiseErrorKind.WrongState, state.Rekey);
    }

    [Fact]
    public void RekeyIsAllowedAtTheExhaustedNonceBecauseItUsesTheReservedNonceItself()
    {
        // Spec §4.2: REKEY always encrypts under 2^64-1; it does not consume or check the message nonce.
        using var state = new CipherState(AeadCipher.ChaChaPoly);
        state.InitializeKey(Key);
        state.SetNonce(ulong.MaxValue);
        state.Rekey();
        Assert.Equal(ulong.MaxValue, state.Nonce);
    }

    public static TheoryData<string> AesGcmBackends()
    {
        var data = new TheoryData<string> { "BCL" };
        if (AeadCipher.Only("AESGCM", AeadImplementation.Libsodium) is not null)
        {
            data.Add("NSec");
        }

        return data;
    }

    internal static NoiseCipher AesBackend(string backend) => backend switch
    {
        "BCL" => AeadCipher.Only("AESGCM", AeadImplementation.Platform) ?? throw new InvalidOperationException("This platform has no AES-GCM."),
        "NSec" => AeadCipher.Only("AESGCM", AeadImplementation.Libsodium) ?? throw new InvalidOperationException("libsodium's AES-GCM is not available here."),
        _ => throw new ArgumentOutOfRangeException(nameof(backend)),
    };

    internal static byte[] ChaChaNonce(ulong n)
    {
        var nonce = new byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(nonce.AsSpan(4), n);
        return nonce;
    }

    internal static byte[] AesNonce(ulong n)
    {
        var nonce = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(nonce.AsSpan(4), n);
        return nonce;
    }
}
