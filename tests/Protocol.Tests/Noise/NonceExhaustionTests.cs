using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Noise.Crypto;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>The reserved nonce 2^64-1 (spec §5.1): never used for a message.</summary>
public sealed class NonceExhaustionTests
{
    private static readonly byte[] Key = Bytes("exhaustion key", 32);

    public static TheoryData<string> Ciphers() => ["ChaChaPoly", "AESGCM-BCL"];

    private static CipherState Keyed(string cipher, ulong nonce)
    {
        var state = new CipherState(cipher == "ChaChaPoly" ? AeadCipher.ChaChaPoly : RekeyTests.AesBackend("BCL"));
        state.InitializeKey(Key);
        state.SetNonce(nonce);
        return state;
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public void EncryptAtTheMaximumNonceThrowsNonceExhausted(string cipher)
    {
        using var state = Keyed(cipher, ulong.MaxValue);
        Fails(NoiseErrorKind.NonceExhausted, () => state.EncryptWithAd(default, [1, 2, 3], new byte[19]));
        Assert.Equal(ulong.MaxValue, state.Nonce);
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public void DecryptAtTheMaximumNonceThrowsNonceExhausted(string cipher)
    {
        using var state = Keyed(cipher, ulong.MaxValue);
        Fails(NoiseErrorKind.NonceExhausted, () => state.DecryptWithAd(default, new byte[19], new byte[3]));
        Assert.Equal(ulong.MaxValue, state.Nonce);
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public void TheLastUsableNonceEncryptsAndDecryptsOnceThenTheStateIsExhausted(string cipher)
    {
        using var sender = Keyed(cipher, ulong.MaxValue - 1);
        using var receiver = Keyed(cipher, ulong.MaxValue - 1);
        var message = new byte[3 + NoiseConstants.TagLength];
        var payload = new byte[3];

        Assert.Equal(message.Length, sender.EncryptWithAd(default, [7, 8, 9], message));
        Assert.Equal(ulong.MaxValue, sender.Nonce);
        Assert.Equal(3, receiver.DecryptWithAd(default, message, payload));
        Assert.Equal([7, 8, 9], payload);
        Assert.Equal(ulong.MaxValue, receiver.Nonce);

        Fails(NoiseErrorKind.NonceExhausted, () => sender.EncryptWithAd(default, [7, 8, 9], message));
        Fails(NoiseErrorKind.NonceExhausted, () => receiver.DecryptWithAd(default, message, payload));
    }

    [Fact]
    public void WithoutAKeyTheNonceIsNotConsultedAndBytesPassThrough()
    {
        // Before a key exists, EncryptWithAd returns the plaintext (spec §5.1): no nonce, no exhaustion.
        using var state = new CipherState(AeadCipher.ChaChaPoly);
        state.SetNonce(ulong.MaxValue);
        var output = new byte[3];
        Assert.Equal(3, state.EncryptWithAd(default, [1, 2, 3], output));
        Assert.Equal([1, 2, 3], output);
    }

    [Fact]
    public void InitializeKeyResetsTheNonceToZero()
    {
        using var state = Keyed("ChaChaPoly", ulong.MaxValue);
        state.InitializeKey(Key);
        Assert.Equal(0UL, state.Nonce);
    }

    [Fact]
    public void StatelessWriteWithTheReservedNonceThrowsNonceExhausted()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.NonceExhausted, () => initiator.Write(ulong.MaxValue, [1, 2, 3], new byte[19]));
        }
    }

    [Fact]
    public void StatelessWriteWithTheLastUsableNonceIsReadable()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[19];
            var payload = new byte[3];
            initiator.Write(ulong.MaxValue - 1, [1, 2, 3], message);
            Assert.Equal(3, responder.Read(ulong.MaxValue - 1, message, payload));
            Assert.Equal([1, 2, 3], payload);
        }
    }

    [Fact]
    public void StatelessReadWithTheReservedNonceIsRefused()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.NonceExhausted, () => responder.Read(ulong.MaxValue, new byte[19], new byte[3]));
        }
    }

    [Fact]
    public void RejectedReservedNonceWriteDoesNotPoisonWriteNext()
    {
        // A call that throws should leave the transport as it was. Write(2^64-1) sets the sending nonce
        // before it checks it, so WriteNext afterwards starts from 2^64-1 and can never send again.
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var framed = new byte[StatelessNoiseTransport.NonceLength + 3 + NoiseConstants.TagLength];
            var payload = new byte[3];
            initiator.WriteNext([1, 1, 1], framed);
            Assert.Equal(3, responder.ReadWithNonce(framed, payload));

            Fails(NoiseErrorKind.NonceExhausted, () => initiator.Write(ulong.MaxValue, [1, 2, 3], new byte[19]));

            Assert.Equal(framed.Length, initiator.WriteNext([2, 2, 2], framed));
            Assert.Equal(1UL, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(framed));
            Assert.Equal(3, responder.ReadWithNonce(framed, payload));
            Assert.Equal([2, 2, 2], payload);
        }
    }
}
