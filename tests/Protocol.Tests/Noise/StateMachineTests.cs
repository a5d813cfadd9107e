using SecureChannels.Protocol.Noise;
using static SecureChannels.Protocol.Tests.Noise.NoiseTestKit;

namespace SecureChannels.Protocol.Tests.Noise;

/// <summary>Calls out of turn, before completion, after completion and after Dispose.</summary>
public sealed class StateMachineTests
{
    [Fact]
    public void WritingWhenItIsThePeersTurnIsWrongStateAndChangesNothing()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        Assert.True(initiator.IsMyTurn);
        Assert.False(responder.IsMyTurn);
        var hashBefore = responder.HandshakeHash.ToArray();

        Fails(NoiseErrorKind.WrongState, () => responder.WriteMessage([], new byte[256]));
        Fails(NoiseErrorKind.WrongState, () => responder.GetMessageLength(0));
        Fails(NoiseErrorKind.WrongState, () => responder.GetMaxPayloadLength());

        Assert.Equal(hashBefore, responder.HandshakeHash.ToArray());
        RunHandshake(initiator, responder);
    }

    [Fact]
    public void ReadingWhenItIsOurTurnIsWrongStateAndChangesNothing()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var hashBefore = initiator.HandshakeHash.ToArray();

        Fails(NoiseErrorKind.WrongState, () => initiator.ReadMessage(new byte[32], new byte[32]));

        Assert.Equal(hashBefore, initiator.HandshakeHash.ToArray());
        Assert.True(initiator.IsMyTurn);
        RunHandshake(initiator, responder);
    }

    [Fact]
    public void TurnsAlternateAndCompletionIsReportedOnBothSides()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        var message = new byte[256];
        bool[] initiatorTurns = [true, false, true];
        foreach (var initiatorTurn in initiatorTurns)
        {
            Assert.Equal(initiatorTurn, initiator.IsMyTurn);
            Assert.Equal(!initiatorTurn, responder.IsMyTurn);
            Assert.False(initiator.IsCompleted);
            Assert.False(responder.IsCompleted);
            var (writer, reader) = initiatorTurn ? (initiator, responder) : (responder, initiator);
            var written = writer.WriteMessage([], message);
            reader.ReadMessage(message.AsSpan(0, written), []);
        }

        Assert.True(initiator.IsCompleted);
        Assert.True(responder.IsCompleted);
        Assert.False(initiator.IsMyTurn);
        Assert.False(responder.IsMyTurn);
    }

    [Fact]
    public void ToTransportBeforeCompletionIsWrongStateAndTheHandshakeCanStillFinish()
    {
        using var initiator = BuildInitiator(XX);
        using var responder = BuildResponder(XX);
        Fails(NoiseErrorKind.WrongState, () => initiator.ToTransport());
        Fails(NoiseErrorKind.WrongState, () => responder.ToStatelessTransport());

        var message = new byte[256];
        var written = initiator.WriteMessage([], message);
        responder.ReadMessage(message.AsSpan(0, written), []);
        Fails(NoiseErrorKind.WrongState, () => initiator.ToTransport());
        Fails(NoiseErrorKind.WrongState, () => responder.ToTransport());

        RunHandshake(initiator, responder);
        using var a = initiator.ToTransport();
        using var b = responder.ToTransport();
        Assert.Equal([1], Open(b, Seal(a, [1])));
    }

    [Fact]
    public void WritingOrReadingAfterCompletionIsWrongState()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        RunHandshake(initiator, responder);
        Fails(NoiseErrorKind.WrongState, () => initiator.WriteMessage([], new byte[256]));
        Fails(NoiseErrorKind.WrongState, () => responder.WriteMessage([], new byte[256]));
        Fails(NoiseErrorKind.WrongState, () => initiator.ReadMessage(new byte[48], new byte[48]));
        Fails(NoiseErrorKind.WrongState, () => initiator.GetMessageLength(0));

        // The completed state still converts.
        using var transport = initiator.ToTransport();
    }

    [Fact]
    public void ToTransportConsumesTheHandshakeSoASecondConversionFails()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        RunHandshake(initiator, responder);
        using var transport = initiator.ToTransport();
        AssertRefused(() => initiator.ToTransport());
        AssertRefused(() => initiator.ToStatelessTransport());
        AssertRefused(() => initiator.WriteMessage([], new byte[64]));

        // The handshake hash stays readable after conversion (channel binding may be taken from either).
        Assert.Equal(transport.HandshakeHash.ToArray(), initiator.HandshakeHash.ToArray());
    }

    [Fact]
    public void HandshakeUseAfterDisposeThrowsObjectDisposedException()
    {
        var initiator = BuildInitiator(XX);
        initiator.Dispose();
        Assert.False(initiator.IsMyTurn);
        Assert.Throws<ObjectDisposedException>(() => initiator.WriteMessage([], new byte[256]));
        Assert.Throws<ObjectDisposedException>(() => initiator.ReadMessage(new byte[32], new byte[32]));
        Assert.Throws<ObjectDisposedException>(() => initiator.GetMessageLength(0));
        Assert.Throws<ObjectDisposedException>(() => initiator.GetMaxPayloadLength());
        initiator.Dispose();
    }

    [Fact]
    public void ToTransportAfterDisposeThrowsObjectDisposedException()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        RunHandshake(initiator, responder);
        initiator.Dispose();
        responder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => initiator.ToTransport());
        Assert.Throws<ObjectDisposedException>(() => responder.ToStatelessTransport());
    }

    [Fact]
    public void TransportUseAfterDisposeThrowsObjectDisposedException()
    {
        var (initiator, responder) = Transports(NN);
        var message = Seal(initiator, [1, 2, 3]);
        initiator.Dispose();
        responder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => initiator.Write([1], new byte[17]));
        Assert.Throws<ObjectDisposedException>(() => responder.Read(message, new byte[3]));
        Assert.Throws<ObjectDisposedException>(() => responder.TryRead(message, new byte[3], out _));
        Assert.Throws<ObjectDisposedException>(initiator.RekeySending);
        Assert.Throws<ObjectDisposedException>(responder.RekeyReceiving);
        initiator.Dispose();
    }

    [Fact]
    public void StatelessTransportUseAfterDisposeThrowsObjectDisposedException()
    {
        var (initiator, responder) = StatelessTransports(NN);
        var framed = new byte[8 + 1 + 16];
        initiator.WriteNext([1], framed);
        initiator.Dispose();
        responder.Dispose();
        Assert.Throws<ObjectDisposedException>(() => initiator.Write(5, [1], new byte[17]));
        Assert.Throws<ObjectDisposedException>(() => initiator.WriteNext([1], new byte[25]));
        Assert.Throws<ObjectDisposedException>(() => responder.Read(0, framed.AsSpan(8), new byte[1]));
        Assert.Throws<ObjectDisposedException>(() => responder.ReadWithNonce(framed, new byte[1]));
        Assert.Throws<ObjectDisposedException>(() => responder.TryRead(0, framed.AsSpan(8), new byte[1], out _));
        responder.Dispose();
    }

    [Fact]
    public void OneWayResponderCannotSendAndOneWayInitiatorCannotReceive()
    {
        var (initiator, responder) = Transports("Noise_X_25519_ChaChaPoly_SHA256");
        using (initiator)
        using (responder)
        {
            Fails(NoiseErrorKind.WrongState, () => responder.Write([1], new byte[17]));
            Fails(NoiseErrorKind.WrongState, () => initiator.Read(new byte[17], new byte[1]));
            Fails(NoiseErrorKind.WrongState, () => initiator.TryRead(new byte[17], new byte[1], out _));
            Fails(NoiseErrorKind.WrongState, responder.RekeySending);
            Fails(NoiseErrorKind.WrongState, initiator.RekeyReceiving);
            Assert.Equal(0UL, responder.SendingNonce);
            Assert.Equal(0UL, initiator.ReceivingNonce);
        }

        var (statelessInitiator, statelessResponder) = StatelessTransports("Noise_N_25519_AESGCM_BLAKE2b");
        using (statelessInitiator)
        using (statelessResponder)
        {
            Fails(NoiseErrorKind.WrongState, () => statelessResponder.Write(0, [1], new byte[17]));
            Fails(NoiseErrorKind.WrongState, () => statelessResponder.WriteNext([1], new byte[25]));
            Fails(NoiseErrorKind.WrongState, () => statelessInitiator.Read(0, new byte[17], new byte[1]));
            Fails(NoiseErrorKind.WrongState, () => statelessInitiator.ReadWithNonce(new byte[25], new byte[1]));

            var framed = new byte[25];
            statelessInitiator.WriteNext([42], framed);
            var payload = new byte[1];
            Assert.Equal(1, statelessResponder.ReadWithNonce(framed, payload));
            Assert.Equal(42, payload[0]);
        }
    }

    [Fact]
    public void OverlappingHandshakeBuffersAreRejectedBeforeAnythingChanges()
    {
        using var initiator = BuildInitiator(NN);
        using var responder = BuildResponder(NN);
        var buffer = new byte[128];
        Assert.Throws<ArgumentException>(() => initiator.WriteMessage(buffer.AsSpan(0, 4), buffer));
        Assert.True(initiator.IsMyTurn);
        var written = initiator.WriteMessage(buffer.AsSpan(100, 4), buffer.AsSpan(0, 64));
        Assert.Throws<ArgumentException>(() => responder.ReadMessage(buffer.AsSpan(0, written), buffer.AsSpan(10, 10)));
        Assert.Equal(4, responder.ReadMessage(buffer.AsSpan(0, written), buffer.AsSpan(64, 10)));
    }

    [Fact]
    public void ShiftedOverlapOnTheTransportIsRejectedButExactInPlaceIsNot()
    {
        var (initiator, responder) = Transports(NN);
        using (initiator)
        using (responder)
        {
            var buffer = new byte[64];
            Assert.Throws<ArgumentException>(() => initiator.Write(buffer.AsSpan(1, 10), buffer));
            Assert.Equal(0UL, initiator.SendingNonce);
            Assert.Equal(26, initiator.Write(buffer.AsSpan(0, 10), buffer));
            Assert.Throws<ArgumentException>(() => responder.Read(buffer.AsSpan(0, 26), buffer.AsSpan(2)));
            Assert.Equal(0UL, responder.ReceivingNonce);
        }
    }

    private static void AssertRefused(Action action)
    {
        var exception = Assert.ThrowsAny<Exception>(action);
        Assert.True(
            exception is ObjectDisposedException or NoiseException { Kind: NoiseErrorKind.WrongState },
            $"expected WrongState or ObjectDisposedException, got {exception.GetType().Name}: {exception.Message}");
    }
}
