using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>A peer that never reads slows its sender down instead of growing memory.</summary>
public sealed class SecureChannelBackPressureTests
{
    private const int Pause = 16 * 1024;
    private const int Resume = 8 * 1024;
    private const int MessageSize = 4 * 1024;
    private const int Messages = 64;
    private const int Capacity = 2;

    // Each message is one record: 2-byte length, type byte, body, tag.
    private const int FrameSize = LengthPrefixedFrame.HeaderLength + 1 + MessageSize + NoiseConstants.TagLength;

    [Fact]
    public async Task APeerThatNeverReadsBlocksTheSenderAndHoldsBoundedMemoryThenReadingReleasesIt()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var mitm = Connection();
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, settings: new() { ReceiveQueueCapacity = Capacity }), mitm.Ends);
        await using (a)
        await using (b)
        {
            var sending = Task.Run(async () =>
            {
                for (var i = 0; i < Messages; i++)
                {
                    await a.SendAsync(ChannelTestKit.Pattern(MessageSize, i));
                }
            });

            // The relay towards bob finds his pipe full: bob's channel stopped reading once its queue was full.
            // (Were the queue unbounded, this would never happen and the guard would fail the test.)
            await mitm.ToResponder.Blocked.WaitAsync(ChannelTestKit.Guard);
            Assert.False(sending.IsCompleted, "Every send completed although the peer reads nothing.");

            // What went towards bob is bounded: his queue and the message in hand, his pipe up to its pause
            // threshold plus one batch the relay read from alice's pipe (itself at most its threshold plus a message).
            var bound = ((Capacity + 1) * FrameSize) + Pause + (Pause + FrameSize) + FrameSize;
            Assert.InRange(mitm.ToResponder.ForwardedBytes, 0, bound);
            Assert.True(bound < Messages * FrameSize / 2);

            for (var i = 0; i < Messages; i++)
            {
                using var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
                Assert.True(message!.Payload.Span.SequenceEqual(ChannelTestKit.Pattern(MessageSize, i)), $"Message {i} arrived altered.");
            }

            await sending.WaitAsync(ChannelTestKit.Guard);
        }
    }

    [Fact]
    public async Task ASendBlockedByAPeerThatNeverReadsFailsWithTheReasonTheChannelEnded()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Bob accepts and then never reads. Alice's flush continuations run inline, so the cancelled flush of her
        // blocked send resumes inside the dispose that cancels it.
        var toBob = new Pipe(new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Resume, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));
        var toAlice = new Pipe();
        var rogueOpen = RoguePeer.RespondAsync(new ChannelTestKit.DuplexPipe(toBob.Reader, toAlice.Writer), kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(new ChannelTestKit.DuplexPipe(toAlice.Reader, toBob.Writer), kit.Options(alice));
        using var rogue = await rogueOpen.WaitAsync(ChannelTestKit.Guard);
        await rogue.SendRecordAsync((byte)RecordType.Accept, default);
        var a = await connect.WaitAsync(ChannelTestKit.Guard);

        var sending = a.SendAsync(new byte[4 * Pause]).AsTask();
        Assert.False(sending.IsCompleted);
        var disposing = a.DisposeAsync().AsTask();
        try
        {
            // The send fails with the reason the channel ended (GoingAway), never with Normal, which means a graceful close.
            var failure = await Assert.ThrowsAsync<SecureChannelException>(() => sending.WaitAsync(ChannelTestKit.Guard));
            Assert.True(failure.Code == ChannelErrorCode.GoingAway, $"The blocked send failed with {failure.Code}: {failure.Message}");
        }
        finally
        {
            // Let the disposal finish whatever it still writes.
            await toBob.Reader.CompleteAsync();
            await disposing.WaitAsync(ChannelTestKit.Guard);
        }
    }

    [Fact]
    public async Task DisposingWhenThePeerReadsNothingAtAllDoesNotHang()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // Bob completes the handshake, accepts, and then never reads again; his pipe holds little.
        var toBob = new Pipe(new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Resume, useSynchronizationContext: false));
        var toAlice = new Pipe();
        var rogueOpen = RoguePeer.RespondAsync(new ChannelTestKit.DuplexPipe(toBob.Reader, toAlice.Writer), kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(new ChannelTestKit.DuplexPipe(toAlice.Reader, toBob.Writer), kit.Options(alice));
        using var rogue = await rogueOpen.WaitAsync(ChannelTestKit.Guard);
        await rogue.SendRecordAsync((byte)RecordType.Accept, default);
        var a = await connect.WaitAsync(ChannelTestKit.Guard);

        var sending = a.SendAsync(new byte[4 * Pause]).AsTask();
        Assert.False(sending.IsCompleted, "A send larger than the pipe completed although nobody reads.");

        // Disposing must not wait for a reader that never comes (neither for the blocked send nor for the CLOSE record).
        var disposing = a.DisposeAsync().AsTask();
        try
        {
            await disposing.WaitAsync(ChannelTestKit.Guard);
            await Assert.ThrowsAsync<SecureChannelException>(() => sending.WaitAsync(ChannelTestKit.Guard));
        }
        finally
        {
            // Whatever happened, end the connection so nothing is left waiting after the test.
            await toBob.Reader.CompleteAsync();
            await disposing.WaitAsync(ChannelTestKit.Guard);
        }
    }

    private static FaultyConnection Connection()
    {
        var small = new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Resume, useSynchronizationContext: false);

        // Bob's pipe runs his pump inline in the relay's flush, so a pending flush means his pump is waiting on his queue.
        var smallInline = new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Resume, readerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
        return new FaultyConnection(initiatorOutput: small, responderInput: smallInline);
    }
}
