using System.Buffers.Binary;
using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>The explicit-nonce transport: rising sending nonces, the nonce prefix, and TryRead.</summary>
public sealed class StatelessTransportTests
{
    [Fact]
    public void WriteNextPrefixesABigEndianCounterStartingAtZero()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            Assert.Equal(0UL, initiator.NextSendingNonce);
            var framed = new byte[8 + 2 + 16];
            for (ulong i = 0; i < 3; i++)
            {
                Assert.Equal(framed.Length, initiator.WriteNext([1, 2], framed));
                Assert.Equal(i, BinaryPrimitives.ReadUInt64BigEndian(framed));
                Assert.Equal(i + 1, initiator.NextSendingNonce);
            }
        }
    }

    [Fact]
    public void ExplicitNonceMessagesAreReadableUnderTheSameNonceOnly()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[19];
            initiator.Write(1234, [1, 2, 3], message);
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(1233, message, new byte[3]));
            Fails(NoiseErrorKind.DecryptFailed, () => responder.Read(1235, message, new byte[3]));
            var payload = new byte[3];
            Assert.Equal(3, responder.Read(1234, message, payload));
            Assert.Equal([1, 2, 3], payload);
        }
    }

    [Fact]
    public void ReusingOrLoweringASendingNonceIsNonceReused()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[17];
            initiator.Write(5, [1], message);
            Assert.Equal(6UL, initiator.NextSendingNonce);
            Fails(NoiseErrorKind.NonceReused, () => initiator.Write(5, [2], message));
            Fails(NoiseErrorKind.NonceReused, () => initiator.Write(0, [2], message));
            Assert.Equal(6UL, initiator.NextSendingNonce);

            // Skipping ahead is allowed, and WriteNext continues after the highest nonce used.
            initiator.Write(10, [3], message);
            var framed = new byte[25];
            initiator.WriteNext([4], framed);
            Assert.Equal(11UL, BinaryPrimitives.ReadUInt64BigEndian(framed));
        }
    }

    [Fact]
    public void AFailedWriteDoesNotConsumeANonce()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.BufferTooSmall, () => initiator.Write(3, [1, 2], new byte[17]));
            Fails(NoiseErrorKind.MessageTooLarge, () => initiator.Write(3, new byte[65520], new byte[70000]));
            Assert.Equal(0UL, initiator.NextSendingNonce);
            var message = new byte[18];
            initiator.Write(3, [1, 2], message);
            Assert.Equal(2, responder.Read(3, message, new byte[2]));
        }
    }

    [Fact]
    public void TryReadReturnsFalseForAForgeryAndTrueForTheGenuineMessage()
    {
        var (initiator, responder) = StatelessTransports(NN);
        using (initiator)
        using (responder)
        {
            var message = new byte[19];
            initiator.Write(0, [7, 8, 9], message);
            var forged = (byte[])message.Clone();
            forged[0] ^= 1;
            var payload = new byte[3];
            Assert.False(responder.TryRead(0, forged, payload, out var written));
            Assert.Equal(0, written);
            Assert.True(responder.TryRead(0, message, payload, out written));
            Assert.Equal(3, written);
            Assert.Equal([7, 8, 9], payload);

            // A replay is not an authentication failure: it still throws.
            Fails(NoiseErrorKind.Replayed, () => responder.TryRead(0, message, payload, out _));
        }
    }

    [Fact]
    public void OrderedTransportTryReadReturnsFalseForAForgeryWithoutAdvancing()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var message = Seal(initiator, [1, 2, 3]);
            var forged = (byte[])message.Clone();
            forged[^1] ^= 0x40;
            var payload = new byte[3];
            Assert.False(responder.TryRead(forged, payload, out _));
            Assert.Equal(0UL, responder.ReceivingNonce);
            Assert.True(responder.TryRead(message, payload, out var written));
            Assert.Equal(3, written);
            Assert.Equal([1, 2, 3], payload);

            // Non-authentication errors still throw from TryRead.
            Fails(NoiseErrorKind.MessageTooShort, () => responder.TryRead(new byte[15], payload, out _));
        }
    }

    [Fact]
    public void BothDirectionsKeepIndependentNoncesAndWindows()
    {
        var (initiator, responder) = StatelessTransports(XX);
        using (initiator)
        using (responder)
        {
            var message = new byte[17];
            var payload = new byte[1];
            initiator.Write(7, [1], message);
            Assert.Equal(1, responder.Read(7, message, payload));

            // The responder's own sending nonces start at zero, and the initiator's window has seen nothing.
            Assert.Equal(0UL, responder.NextSendingNonce);
            responder.Write(7, [2], message);
            Assert.Equal(1, initiator.Read(7, message, payload));
            Assert.Equal(2, payload[0]);
        }
    }

    [Fact]
    public void HandshakeHashAndRemoteStaticMatchTheOrderedTransport()
    {
        using var initiator = BuildInitiator(IK);
        using var responder = BuildResponder(IK);
        RunHandshake(initiator, responder);
        var hash = initiator.HandshakeHash.ToArray();
        using var stateless = initiator.ToStatelessTransport();
        using var ordered = responder.ToTransport();
        Assert.Equal(hash, stateless.HandshakeHash.ToArray());
        Assert.Equal(hash, ordered.HandshakeHash.ToArray());
        Assert.Equal(ResponderStaticPublic, stateless.RemoteStaticPublicKey.ToArray());
        Assert.Equal(InitiatorStaticPublic, ordered.RemoteStaticPublicKey.ToArray());

        // Both flavours use the same keys: nonce 0 from the stateless side is what the ordered side expects first.
        var message = new byte[17];
        stateless.Write(0, [5], message);
        Assert.Equal([5], Open(ordered, message));
    }
}
