using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>The 65535-byte message limit (spec §3), buffer sizes and predicted lengths.</summary>
public sealed class MessageSizeTests
{
    [Theory]
    [InlineData("ChaChaPoly")]
    [InlineData("AESGCM")]
    public void TransportPayloadOfExactly65519BytesMakesA65535ByteMessageThatRoundTrips(string cipher)
    {
        var (initiator, responder) = Transports($"Noise_NN_25519_{cipher}_SHA256");
        using (initiator)
        using (responder)
        {
            Assert.Equal(65519, NoiseConstants.MaxTransportPayloadLength);
            var payload = Bytes("largest payload", NoiseConstants.MaxTransportPayloadLength);
            var message = new byte[NoiseConstants.MaxMessageLength];
            Assert.Equal(65535, initiator.Write(payload, message));
            var received = new byte[payload.Length];
            Assert.Equal(payload.Length, responder.Read(message, received));
            Assert.Equal(payload, received);
        }
    }

    [Fact]
    public void TransportPayloadOf65520BytesIsMessageTooLargeAndConsumesNoNonce()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[70000];
            Fails(NoiseErrorKind.MessageTooLarge, () => initiator.Write(new byte[65520], message));
            Assert.Equal(0UL, initiator.SendingNonce);
            Assert.Equal([1], Open(responder, Seal(initiator, [1])));
        }
    }

    [Fact]
    public void ReadingA65536ByteTransportMessageIsMessageTooLargeAndConsumesNoNonce()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.MessageTooLarge, () => responder.Read(new byte[65536], new byte[65536]));
            Assert.Equal(0UL, responder.ReceivingNonce);
            Assert.Equal([1], Open(responder, Seal(initiator, [1])));
        }
    }

    [Fact]
    public void StatelessTransportEnforcesTheSameLimits()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[NoiseConstants.MaxMessageLength];
            Assert.Equal(65535, initiator.Write(0, new byte[65519], message));
            Assert.Equal(65519, responder.Read(0, message, new byte[65519]));
            Fails(NoiseErrorKind.MessageTooLarge, () => initiator.Write(1, new byte[65520], new byte[70000]));
            Fails(NoiseErrorKind.MessageTooLarge, () => responder.Read(1, new byte[65536], new byte[65536]));
        }
    }

    [Fact]
    public void HandshakePayloadPushingTheFirstMessageOver65535IsMessageTooLargeAndARetryWorks()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        var message = new byte[70000];

        // NN message 1 is e (32 bytes) and a clear payload: 65503 bytes of payload is the most that fits.
        Assert.Equal(65536, initiator.GetMessageLength(65504));
        Fails(NoiseErrorKind.MessageTooLarge, () => initiator.WriteMessage(new byte[65504], message));
        Assert.True(initiator.IsMyTurn);

        var payload = Bytes("largest handshake payload", 65503);
        Assert.Equal(65535, initiator.WriteMessage(payload, message));
        var received = new byte[65503];
        Assert.Equal(65503, responder.ReadMessage(message.AsSpan(0, 65535), received));
        Assert.Equal(payload, received);
        FinishHandshake(initiator, responder);
    }

    [Fact]
    public void HandshakePayloadPushingAnEncryptedMessageOver65535IsMessageTooLargeAndARetryWorks()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var message = new byte[70000];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);

        // XX message 2 is e (32), encrypted s (48) and an encrypted payload (+16): 65439 bytes of payload fit.
        Assert.Equal(96, responder.GetMessageLength(0));
        Fails(NoiseErrorKind.MessageTooLarge, () => responder.WriteMessage(new byte[65440], message));
        Assert.True(responder.IsMyTurn);

        var payload = Bytes("large handshake payload", 65439);
        Assert.Equal(65535, responder.WriteMessage(payload, message));
        var received = new byte[65439];
        Assert.Equal(65439, initiator.ReadMessage(message.AsSpan(0, 65535), received));
        Assert.Equal(payload, received);
        FinishHandshake(initiator, responder);
    }

    [Fact]
    public void ReadingA65536ByteHandshakeMessageIsMessageTooLargeAndLeavesTheReaderUsable()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        Fails(NoiseErrorKind.MessageTooLarge, () => responder.ReadMessage(new byte[65536], new byte[65536]));

        // Oversized input is refused before anything is hashed, so the genuine message still reads.
        var message = new byte[64];
        var written = initiator.WriteMessage([1, 2], message);
        var payload = new byte[2];
        Assert.Equal(2, responder.ReadMessage(message.AsSpan(0, written), payload));
        FinishHandshake(initiator, responder);
    }

    [Fact]
    public void HandshakeWriteIntoATooSmallBufferIsBufferTooSmallAndLeavesTheWriterUsable()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var length = initiator.GetMessageLength(10);
        Assert.Equal(42, length);
        Fails(NoiseErrorKind.BufferTooSmall, () => initiator.WriteMessage(new byte[10], new byte[length - 1]));
        Assert.True(initiator.IsMyTurn);

        var message = new byte[length];
        Assert.Equal(length, initiator.WriteMessage(new byte[10], message));
        Assert.Equal(10, responder.ReadMessage(message, new byte[10]));
        FinishHandshake(initiator, responder);
    }

    [Fact]
    public void HandshakeReadIntoATooSmallPayloadBufferIsBufferTooSmallAndLeavesTheReaderUsable()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var message = new byte[100];
        var written = initiator.WriteMessage(new byte[10], message);
        Fails(NoiseErrorKind.BufferTooSmall, () => responder.ReadMessage(message.AsSpan(0, written), new byte[9]));

        Assert.Equal(10, responder.ReadMessage(message.AsSpan(0, written), new byte[10]));
        FinishHandshake(initiator, responder);
    }

    [Fact]
    public void TransportWriteIntoATooSmallBufferIsBufferTooSmallAndConsumesNoNonce()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.BufferTooSmall, () => initiator.Write(new byte[10], new byte[25]));
            Assert.Equal(0UL, initiator.SendingNonce);
            Assert.Equal(new byte[10], Open(responder, Seal(initiator, new byte[10])));
        }
    }

    [Fact]
    public void TransportReadIntoATooSmallPayloadBufferIsBufferTooSmallAndConsumesNoNonce()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var message = Seal(initiator, new byte[10]);
            Fails(NoiseErrorKind.BufferTooSmall, () => responder.Read(message, new byte[9]));
            Assert.Equal(0UL, responder.ReceivingNonce);
            Assert.Equal(new byte[10], Open(responder, message));
        }
    }

    [Fact]
    public void StatelessWriteNextIntoABufferSmallerThanTheNonceIsBufferTooSmall()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.BufferTooSmall, () => initiator.WriteNext([], new byte[7]));
            Fails(NoiseErrorKind.BufferTooSmall, () => initiator.WriteNext([1], new byte[8 + 16]));
            Fails(NoiseErrorKind.MessageTooShort, () => responder.ReadWithNonce(new byte[7], new byte[16]));
        }
    }

    [Fact]
    public void EmptyTransportPayloadIsJustATag()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var message = Seal(initiator, []);
            Assert.Equal(NoiseConstants.TagLength, message.Length);
            Assert.Empty(Open(responder, message));
        }
    }

    [Theory]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA256", new[] { 32, 96, 64 })]
    [InlineData("Noise_XX_25519_ChaChaPoly_SHA512", new[] { 32, 96, 64 })]
    [InlineData("Noise_NN_25519_ChaChaPoly_SHA256", new[] { 32, 48 })]
    [InlineData("Noise_IK_25519_ChaChaPoly_SHA256", new[] { 96, 48 })]
    [InlineData("Noise_NNpsk0_25519_ChaChaPoly_SHA256", new[] { 48, 48 })]
    [InlineData("Noise_NNpsk2_25519_ChaChaPoly_SHA256", new[] { 48, 48 })]
    [InlineData("Noise_XXpsk0+psk3_25519_ChaChaPoly_SHA256", new[] { 48, 96, 64 })]
    [InlineData("Noise_N_25519_ChaChaPoly_SHA256", new[] { 48 })]
    [InlineData("Noise_X_25519_ChaChaPoly_SHA256", new[] { 96 })]
    [InlineData("Noise_NK1_25519_ChaChaPoly_SHA256", new[] { 32, 48 })]
    [InlineData("Noise_X1X1_25519_ChaChaPoly_SHA256", new[] { 32, 96, 64, 16 })]
    public void EmptyPayloadMessageLengthsMatchTheSpecificationsArithmetic(string name, int[] lengths)
    {
        // Computed by hand from the tokens: e = 32, s = 32 (+16 once a key exists), payload tag = 16 once a key
        // exists; in a psk pattern every e also mixes the key (spec §9.2), so NNpsk2's first payload is encrypted.
        using var initiator = BuildInitiator(name);
        using var responder = BuildResponder(name);
        var message = new byte[256];
        foreach (var expected in lengths)
        {
            var (writer, reader) = initiator.IsMyTurn ? (initiator, responder) : (responder, initiator);
            Assert.Equal(expected, writer.GetMessageLength(0));
            Assert.Equal(expected + 5, writer.GetMessageLength(5));
            var written = writer.WriteMessage([], message);
            Assert.Equal(expected, written);
            reader.ReadMessage(message.AsSpan(0, written), []);
        }

        Assert.True(initiator.IsCompleted && responder.IsCompleted);
    }

    [Fact]
    public void GetMessageLengthRejectsANegativePayloadLength()
    {
        using var initiator = BuildInitiator(NN);
        Assert.Throws<ArgumentOutOfRangeException>(() => initiator.GetMessageLength(-1));
    }

    private static void FinishHandshake(HandshakeState initiator, HandshakeState responder)
    {
        RunHandshake(initiator, responder);
        using var a = initiator.ToTransport();
        using var b = responder.ToTransport();
        Assert.Equal([1, 2, 3], Open(b, Seal(a, [1, 2, 3])));
    }
}
