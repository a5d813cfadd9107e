using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Tampered, truncated, replayed and reordered messages, on both transports and in the handshake.</summary>
public sealed class TamperingTests
{
    private const int PayloadLength = 40;

    /// <summary>Positions: first byte, a middle byte (ciphertext body) and bytes of the tag; a low and a high bit each.</summary>
    public static TheoryData<string, int, int> TamperPositions()
    {
        var data = new TheoryData<string, int, int>();
        var messageLength = PayloadLength + NoiseConstants.TagLength;
        foreach (var cipher in new[] { "ChaChaPoly", "AESGCM" })
        {
            foreach (var position in new[] { 0, PayloadLength / 2, PayloadLength - 1, PayloadLength, messageLength - 1 })
            {
                foreach (var bit in new[] { 0, 7 })
                {
                    data.Add(cipher, position, bit);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TamperPositions))]
    public void TamperedTransportMessageFailsAndDoesNotAdvanceNonce(string cipher, int position, int bit)
    {
        var (initiator, responder) = Transports($"Noise_XX_25519_{cipher}_SHA256");
        using (initiator)
        using (responder)
        {
            var payload = Bytes("tamper payload", PayloadLength);
            var genuine = Seal(initiator, payload);
            var tampered = (byte[])genuine.Clone();
            tampered[position] ^= (byte)(1 << bit);

            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(tampered, new byte[PayloadLength]));
            Assert.Equal(0UL, responder.ReceivingNonce);
            Assert.Equal(payload, Open(responder, genuine));
            Assert.Equal(1UL, responder.ReceivingNonce);
        }
    }

    [Theory]
    [MemberData(nameof(TamperPositions))]
    public void TamperedStatelessMessageFailsAndDoesNotBurnItsNonce(string cipher, int position, int bit)
    {
        var (initiator, responder) = StatelessTransports($"Noise_NN_25519_{cipher}_SHA256");
        using (initiator)
        using (responder)
        {
            var payload = Bytes("tamper payload", PayloadLength);
            var genuine = new byte[PayloadLength + NoiseConstants.TagLength];
            initiator.Write(3, payload, genuine);
            var tampered = (byte[])genuine.Clone();
            tampered[position] ^= (byte)(1 << bit);

            var received = new byte[PayloadLength];
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(3, tampered, received));
            Assert.Equal(PayloadLength, responder.Read(3, genuine, received));
            Assert.Equal(payload, received);
        }
    }

    [Fact]
    public void MessageReadUnderTheWrongNonceFailsOnTheStatelessTransport()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[19];
            initiator.Write(4, [1, 2, 3], message);
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(5, message, new byte[3]));

            // The failed nonce 5 was not marked: a genuine message under 5 is still accepted.
            var fifth = new byte[19];
            initiator.Write(5, [5, 5, 5], fifth);
            Assert.Equal(3, responder.Read(5, fifth, new byte[3]));
            Assert.Equal(3, responder.Read(4, message, new byte[3]));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    public void TransportMessageShorterThanTheTagIsMessageTooShort(int length)
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var genuine = Seal(initiator, [1, 2, 3]);
            Fails(NoiseErrorKind.MessageTooShort, () => responder.Read(genuine.AsSpan(0, length), new byte[16]));
            Assert.Equal([1, 2, 3], Open(responder, genuine));
        }
    }

    [Theory]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(18)]
    public void TruncatedTransportMessageThatStillHoldsATagFailsAuthentication(int length)
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var genuine = Seal(initiator, [1, 2, 3]);
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(genuine.AsSpan(0, length), new byte[16]));
            Assert.Equal([1, 2, 3], Open(responder, genuine));
        }
    }

    [Fact]
    public void StatelessMessageShorterThanTheTagIsMessageTooShort()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.MessageTooShort, () => responder.Read(0, new byte[15], new byte[16]));
            Fails(NoiseErrorKind.MessageTooShort, () => responder.ReadWithNonce(new byte[8 + 15], new byte[16]));
        }
    }

    [Fact]
    public void ReplayedTransportMessageFailsOnTheOrderedTransport()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var message = Seal(initiator, [1, 2, 3]);
            Assert.Equal([1, 2, 3], Open(responder, message));
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(message, new byte[3]));
            Assert.Equal(1UL, responder.ReceivingNonce);

            // The failure did not derail the stream.
            Assert.Equal([4], Open(responder, Seal(initiator, [4])));
        }
    }

    [Fact]
    public void ReorderedMessagesFailOnTheOrderedTransportUntilTheyArriveInOrder()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var first = Seal(initiator, [1]);
            var second = Seal(initiator, [2]);
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(second, new byte[1]));
            Assert.Equal([1], Open(responder, first));
            Assert.Equal([2], Open(responder, second));
        }
    }

    [Fact]
    public void ReplayedStatelessMessageIsReplayed()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var framed = new byte[8 + 3 + 16];
            initiator.WriteNext([1, 2, 3], framed);
            var payload = new byte[3];
            Assert.Equal(3, responder.ReadWithNonce(framed, payload));
            Fails(NoiseErrorKind.Replayed, () => responder.ReadWithNonce(framed, payload));
        }
    }

    [Fact]
    public void ReorderedStatelessMessagesWithinTheWindowAreEachAcceptedOnce()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var frames = Enumerable.Range(0, 6).Select(i =>
            {
                var framed = new byte[8 + 1 + 16];
                initiator.WriteNext([(byte)i], framed);
                return framed;
            }).ToArray();

            var payload = new byte[1];
            foreach (var i in new[] { 5, 0, 3, 1, 4, 2 })
            {
                Assert.Equal(1, responder.ReadWithNonce(frames[i], payload));
                Assert.Equal((byte)i, payload[0]);
            }

            foreach (var frame in frames)
            {
                Fails(NoiseErrorKind.Replayed, () => responder.ReadWithNonce(frame, payload));
            }
        }
    }

    [Fact]
    public void StatelessNonceExactlyAWindowBehindTheNewestIsReplayedButOneLessIsAccepted()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            const ulong tooOld = 10;
            const ulong oldestAccepted = tooOld + 1;
            const ulong newest = tooOld + ReplayWindow.WindowSize;

            // Sending nonces must rise, so write in order and deliver out of order.
            var tooOldMessage = Sealed(initiator, tooOld);
            var oldestAcceptedMessage = Sealed(initiator, oldestAccepted);
            var newestMessage = Sealed(initiator, newest);

            var payload = new byte[1];
            Assert.Equal(1, responder.Read(newest, newestMessage, payload));
            Fails(NoiseErrorKind.Replayed, () => responder.Read(tooOld, tooOldMessage, payload));
            Assert.Equal(1, responder.Read(oldestAccepted, oldestAcceptedMessage, payload));
            Assert.Equal((byte)oldestAccepted, payload[0]);
        }
    }

    [Fact]
    public void StatelessForgeryDoesNotBurnANonceAheadOfTheWindow()
    {
        // A forged message with a far-future nonce must not slide the window and lock out genuine traffic.
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var payload = new byte[1];
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(1_000_000, new byte[17], payload));
            Assert.Equal(1, responder.Read(0, Sealed(initiator, 0), payload));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    public void HandshakeMessageShorterThanThePatternNeedsIsMessageTooShortAndAbortsTheHandshake(int length)
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var message = new byte[64];
        initiator.WriteMessage([], message);

        // XX message 1 is "e": 32 bytes at least.
        Fails(NoiseErrorKind.MessageTooShort, () => responder.ReadMessage(message.AsSpan(0, length), new byte[64]));
        Fails(NoiseErrorKind.WrongState, () => responder.ReadMessage(message.AsSpan(0, 32), new byte[64]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(95)]
    [InlineData(80)]
    public void EncryptedHandshakeMessageShorterThanItsTokensAndTagIsMessageTooShort(int length)
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var message = new byte[128];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);
        written = responder.WriteMessage([], message);
        Assert.Equal(96, written);

        // XX message 2: e (32) + encrypted s (48) + payload tag (16).
        Fails(NoiseErrorKind.MessageTooShort, () => initiator.ReadMessage(message.AsSpan(0, length), new byte[128]));
        Fails(NoiseErrorKind.WrongState, () => initiator.ReadMessage(message.AsSpan(0, written), new byte[128]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(60)]
    [InlineData(79)]
    [InlineData(80)]
    [InlineData(95)]
    public void TamperedHandshakeMessageFailsDecryptionAndAbortsTheHandshake(int position)
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var message = new byte[128];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);
        written = responder.WriteMessage([], message);
        message[position] ^= 0x01;

        // A changed e alters h and ee; a changed s or tag fails its own authentication.
        Fails(NoiseErrorKind.DecryptFailed, () => initiator.ReadMessage(message.AsSpan(0, written), new byte[128]));
        Assert.False(initiator.IsMyTurn);
        Fails(NoiseErrorKind.WrongState, () => initiator.WriteMessage([], new byte[128]));
    }

    [Fact]
    public void TamperedClearFirstMessageIsCaughtByTheFirstEncryptedReply()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        var message = new byte[64];
        var written = initiator.WriteMessage([1, 2, 3], message);
        message[written - 1] ^= 0x80;

        // Message 1 carries no key, so the responder cannot tell; the hashes now differ and message 2 fails.
        var payload = new byte[3];
        responder.ReadMessage(message.AsSpan(0, written), payload);
        Assert.NotEqual([1, 2, 3], payload);
        Assert.NotEqual(initiator.HandshakeHash.ToArray(), responder.HandshakeHash.ToArray());
        written = responder.WriteMessage([], message);
        Fails(NoiseErrorKind.DecryptFailed, () => initiator.ReadMessage(message.AsSpan(0, written), []));
    }

    [Fact]
    public void ExtraTrailingBytesOnAnEncryptedHandshakeMessageFailDecryption()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        var message = new byte[64];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);
        written = responder.WriteMessage([], message);
        Fails(NoiseErrorKind.DecryptFailed, () => initiator.ReadMessage(message.AsSpan(0, written + 1), new byte[64]));
    }

    private static byte[] Sealed(StatelessNoiseTransport sender, ulong nonce)
    {
        var message = new byte[1 + NoiseConstants.TagLength];
        sender.Write(nonce, [(byte)nonce], message);
        return message;
    }
}
