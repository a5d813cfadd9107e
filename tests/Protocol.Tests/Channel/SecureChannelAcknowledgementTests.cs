using System.Buffers.Binary;
using SecureChannels.Protocol.Channel;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// ACK records (docs/protocol.md §8.3): the receiver confirms how many messages it accepted, so a sender whose
/// channel breaks knows exactly which of its messages were never confirmed, and that every earlier one arrived.
/// </summary>
public sealed class SecureChannelAcknowledgementTests
{
    private const byte Accept = 0x03;
    private const byte Ack = 0x08;

    [Fact]
    public async Task EveryMessageTheReceiverAcceptedIsAcknowledgedWithoutFurtherTrafficOrTime()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var (a, b) = await OpenAsync(kit);
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 100; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(i * 10, i));
            }

            for (var i = 0; i < 100; i++)
            {
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.Equal(ChannelTestKit.Pattern(i * 10, i), message!.Payload.ToArray());
            }

            // The receiver's pump confirms at the end of each batch it read: no clock moved, nothing else sent.
            await a.WaitForAcknowledgementAsync(100).AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(100, a.MessagesSent);
            Assert.Equal(100, a.MessagesAcknowledged);
            Assert.Equal(100, b.MessagesReceived);
            Assert.Equal(0, b.MessagesSent);
            Assert.Equal(0, a.MessagesReceived);
        }
    }

    [Fact]
    public async Task BothDirectionsAreAcknowledgedWhileBothSidesSend()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var (a, b) = await OpenAsync(kit);
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 20; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(100, i));
                await b.SendAsync(ChannelTestKit.Pattern(100, i + 1));
                (await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))!.Dispose();
                (await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))!.Dispose();
            }

            await a.WaitForAcknowledgementAsync(20).AsTask().WaitAsync(ChannelTestKit.Guard);
            await b.WaitForAcknowledgementAsync(20).AsTask().WaitAsync(ChannelTestKit.Guard);
        }
    }

    [Fact]
    public async Task AReceiverThatStopsReadingConfirmsWhatItsQueueHoldsAtTheNextTick()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var settings = new ChannelTestKit.ChannelSettings { ReceiveQueueCapacity = 2 };
        var (a, b) = await OpenAsync(kit, settings);
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 5; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(10, i));
            }

            // Two messages fill the queue; the pump then waits inside its batch for room, so only the timer can
            // confirm them.
            await ChannelTestKit.UntilAsync(() => b.MessagesReceived == 2);
            kit.Time.Advance(TimeSpan.FromSeconds(15) / 4);
            await a.WaitForAcknowledgementAsync(2).AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(2, a.MessagesAcknowledged);

            for (var i = 0; i < 5; i++)
            {
                (await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))!.Dispose();
            }

            await a.WaitForAcknowledgementAsync(5).AsTask().WaitAsync(ChannelTestKit.Guard);
        }
    }

    [Fact]
    public async Task AGracefulCloseConfirmsEverythingTheClosingSideSent()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var (a, b) = await OpenAsync(kit);
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 10; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(1000, i));
            }

            // The peer answers the CLOSE with an ACK of all it accepted, then its own CLOSE.
            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(10, a.MessagesAcknowledged);
            await a.WaitForAcknowledgementAsync(10).AsTask().WaitAsync(ChannelTestKit.Guard);
        }
    }

    [Fact]
    public async Task WhenTheChannelBreaksTheSenderIsToldExactlyWhichMessagesWereNotConfirmed()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Frames from the initiator: 0 and 1 are handshake messages 1 and 3, then one per message. Message 4 is altered.
        var mitm = new FaultyConnection(toResponder: new FaultPlan().Corrupt(2 + 3, 7));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), mitm.Ends);
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 6; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(50, i));
            }

            for (var i = 0; i < 3; i++)
            {
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.Equal(ChannelTestKit.Pattern(50, i), message!.Payload.ToArray());
            }

            var broken = await Assert.ThrowsAsync<SecureChannelException>(async () => await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.ProtocolError, broken.Code);

            // The receiver's last words were ACK(3), then CLOSE: messages 4 to 6 are the ones not delivered.
            var told = await Assert.ThrowsAsync<SecureChannelException>(async () => await a.WaitForAcknowledgementAsync(6).AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(ChannelErrorCode.ProtocolError, told.Code);
            Assert.True(told.FromPeer);
            Assert.Equal(6, a.MessagesSent);
            Assert.Equal(3, a.MessagesAcknowledged);
            Assert.Equal(3, b.MessagesReceived);
        }
    }

    [Fact]
    public async Task ASideThatSendsNoAcknowledgementsStillDeliversAndItsPeerCountsNone()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, settings: new() { SendAcknowledgements = false }));
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 10; i++)
            {
                await a.SendAsync(ChannelTestKit.Pattern(10, i));
            }

            for (var i = 0; i < 10; i++)
            {
                await b.SendAsync(ChannelTestKit.Pattern(10, i));
                (await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))!.Dispose();
                (await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))!.Dispose();
            }

            // Alice still acknowledges Bob's messages; Bob, who sends none, leaves Alice's count at 0, even at the close.
            await b.WaitForAcknowledgementAsync(10).AsTask().WaitAsync(ChannelTestKit.Guard);
            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(10, b.MessagesReceived);
            Assert.Equal(0, a.MessagesAcknowledged);
        }
    }

    [Fact]
    public async Task WaitingForMoreThanWasSentIsRefused()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var (a, b) = await OpenAsync(kit);
        await using (a)
        await using (b)
        {
            await a.SendAsync(new byte[1]);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await a.WaitForAcknowledgementAsync(2));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await a.WaitForAcknowledgementAsync(-1));
            await a.WaitForAcknowledgementAsync(0);
        }
    }

    public static TheoryData<string> BadAcks => new() { "more than sent", "going back", "short body", "long body" };

    [Theory]
    [MemberData(nameof(BadAcks))]
    public async Task AnAckThatCannotBeTrueEndsTheChannelWithProtocolError(string bad)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (initiatorPipe, responderPipe) = ChannelTestKit.CreateConnection();
        var connect = SecureChannel.ConnectAsync(initiatorPipe, kit.Options(alice));
        using var rogue = await RoguePeer.RespondAsync(responderPipe, kit.Options(bob)).WaitAsync(ChannelTestKit.Guard);
        await rogue.SendRecordAsync(Accept, ReadOnlyMemory<byte>.Empty);
        await using var a = await connect.WaitAsync(ChannelTestKit.Guard);
        await a.SendAsync(new byte[3]);
        await a.SendAsync(new byte[3]);

        switch (bad)
        {
            case "more than sent":
                await rogue.SendRecordAsync(Ack, Count(3));
                break;
            case "going back":
                await rogue.SendRecordAsync(Ack, Count(2));
                await rogue.SendRecordAsync(Ack, Count(1));
                break;
            case "short body":
                await rogue.SendRecordAsync(Ack, Count(1).AsMemory(0, 7));
                break;
            default:
                await rogue.SendRecordAsync(Ack, (byte[])[.. Count(1), 0]);
                break;
        }

        var closed = await a.Completion.WaitAsync(ChannelTestKit.Guard);
        Assert.Equal(ChannelErrorCode.ProtocolError, closed.Code);
        Assert.False(closed.FromPeer);
        Assert.Equal(bad == "going back" ? 2 : 0, a.MessagesAcknowledged);
    }

    private static byte[] Count(ulong count)
    {
        var body = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(body, count);
        return body;
    }

    private static async Task<(SecureChannel Initiator, SecureChannel Responder)> OpenAsync(ChannelTestKit kit, ChannelTestKit.ChannelSettings? settings = null)
    {
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        return await ChannelTestKit.OpenAsync(kit.Options(alice, settings: settings), kit.Options(bob, settings: settings));
    }
}
