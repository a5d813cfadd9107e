using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Noise;
using SecureChannels.Protocol.Wire;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>
/// Every fault a faulty link can inject, at chosen points of a channel's life, while numbered messages stream:
/// the receiver gets exactly 1..k in order (the Noise nonces refuse a gap, a duplicate or a reordering), both
/// sides end with a reason, the sender learns from its acknowledgements which messages were not confirmed, and
/// nothing hangs or grows without bound.
/// </summary>
public sealed class FaultInjectionTests
{
    private const int Count = 8;
    private const int Size = 100;
    private const int Large = 150_000;

    // Bodies of records of known size: a REKEY (type and tag), a CLOSE (and its 2-byte code).
    private const int RekeyFrame = 1 + NoiseConstants.TagLength;
    private const int CloseFrame = 1 + 2 + NoiseConstants.TagLength;

    // A numbered message's record: only a CREDENTIAL_UPDATE is longer in a stream of them.
    private const int MessageRecord = 1 + Size + NoiseConstants.TagLength;

    public enum Point
    {
        /// <summary>The initiator's first message after the handshake.</summary>
        FirstMessage,

        /// <summary>The responder's first record after ACCEPT (an ACK, or a message when both send).</summary>
        AfterAccept,

        /// <summary>The middle record of the second of several 150 000-byte messages (three records each).</summary>
        MidMessage,

        /// <summary>The initiator's first REKEY (it rekeys every three records).</summary>
        Rekey,

        /// <summary>The first record under the new key.</summary>
        AfterRekey,

        /// <summary>The initiator's CREDENTIAL_UPDATE between messages 3 and 4.</summary>
        CredentialUpdate,

        /// <summary>The record right after it.</summary>
        AfterCredentialUpdate,

        /// <summary>The initiator's CLOSE.</summary>
        Close,

        /// <summary>The responder's CLOSE in answer.</summary>
        CloseAnswer,
    }

    public static readonly string[] Faults = ["delay", "reorder", "duplicate", "truncate", "cut-mid-frame", "corrupt", "corrupt-at-end", "drop", "cut", "cut-with-error"];

    public static TheoryData<string, Point, bool> Matrix()
    {
        var data = new TheoryData<string, Point, bool>();
        foreach (var fault in Faults)
        {
            foreach (var point in Enum.GetValues<Point>())
            {
                data.Add(fault, point, false);
            }

            // Both ways as well where the point has a meaning then.
            data.Add(fault, Point.FirstMessage, true);
            data.Add(fault, Point.MidMessage, true);
            data.Add(fault, Point.AfterRekey, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task AFaultAnywhereDeliversAnInOrderPrefixEndsBothSidesWithAReasonAndTellsTheSenderWhatWasNotConfirmed(string fault, Point point, bool bothWays)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var gate = new TaskCompletionSource();
        var (towardsResponder, at) = Where(point);
        var plan = Plan(fault, at, gate.Task);
        var settings = new ChannelTestKit.ChannelSettings { RekeyAfterMessages = point is Point.Rekey or Point.AfterRekey ? 3 : 1L << 20 };

        // The initiator's pipe never pauses: its sends complete while the link holds frames back, so each test
        // controls when a delay ends. (Bounded memory has its own tests below.)
        var connection = new FaultyConnection(
            towardsResponder ? plan : null,
            towardsResponder ? null : plan,
            initiatorOutput: new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice, settings: settings), kit.Options(bob, settings: settings), connection.Ends);
        await using (a)
        await using (b)
        {
            var size = point == Point.MidMessage ? Large : Size;
            var update = await kit.IssueAsync(alice, ["role=a"], TimeSpan.FromHours(2));
            var atBob = NumberedMessages.ReceiveAllAsync(b);
            var atAlice = NumberedMessages.ReceiveAllAsync(a);
            var fromAlice = NumberedMessages.SendAsync(a, Count, size, before: async n =>
            {
                if (n == 4 && point is Point.CredentialUpdate or Point.AfterCredentialUpdate)
                {
                    await a.UpdateCredentialsAsync([update]);
                }
            });
            var fromBob = bothWays ? NumberedMessages.SendAsync(b, Count, size) : Task.FromResult(new NumberedMessages.SendOutcome(0, null));
            await Task.WhenAll(fromAlice, fromBob).WaitAsync(ChannelTestKit.Guard);
            gate.TrySetResult();

            // Then alice closes. A dropped or held-back last frame leaves a side waiting for what never comes: only
            // the clock ends that (a keepalive that no longer decrypts, or the idle timeout), once nothing is in flight.
            var closing = a.CloseAsync();
            var ended = Task.WhenAll(a.Completion, b.Completion);
            if (fault is "drop" or "reorder" && point == Point.Close)
            {
                await ChannelTestKit.UntilAsync(() => b.MessagesReceived == Count && a.MessagesAcknowledged == Count);
                await kit.AdvanceUntilAsync(ended, TimeSpan.FromSeconds(1), 200);
            }

            await ended.WaitAsync(ChannelTestKit.Guard);
            await Record.ExceptionAsync(() => closing.WaitAsync(ChannelTestKit.Guard));
            var what = $"{fault} at {point}{(bothWays ? " (both ways)" : string.Empty)}";
            Assert.True((towardsResponder ? connection.ToResponder : connection.ToInitiator).FaultsApplied > 0, $"{what}: the link never found the frame.");
            await AssertDeliveryAsync(what, a, await fromAlice, b, await atBob.WaitAsync(ChannelTestKit.Guard));
            await AssertDeliveryAsync(what, b, await fromBob, a, await atAlice.WaitAsync(ChannelTestKit.Guard));
            AssertEnds(what, fault, point, await a.Completion, await b.Completion);
            if (fault == "delay")
            {
                // Held back, never lost: everything arrives and is confirmed.
                Assert.Equal(Count, b.MessagesReceived);
                Assert.Equal(Count, a.MessagesAcknowledged);
            }
            await connection.Link.Completion.WaitAsync(ChannelTestKit.Guard);
        }
    }

    public static TheoryData<string, bool, int> HandshakeMatrix()
    {
        var data = new TheoryData<string, bool, int>();
        foreach (var fault in Faults)
        {
            // Towards the responder: message 1, message 3. Towards the initiator: message 2, ACCEPT.
            data.Add(fault, true, 0);
            data.Add(fault, true, 1);
            data.Add(fault, false, 0);
            data.Add(fault, false, 1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(HandshakeMatrix))]
    public async Task AFaultInTheHandshakeFailsTheOpenWithAReasonOrLeavesAChannelThatStillDeliversInOrder(string fault, bool towardsResponder, int frame)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var gate = new TaskCompletionSource();
        var plan = Plan(fault, frame, gate.Task);
        var connection = new FaultyConnection(towardsResponder ? plan : null, towardsResponder ? null : plan);
        var accept = SecureChannel.AcceptAsync(connection.Responder, kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(connection.Initiator, kit.Options(alice));
        var opened = Task.WhenAll(connect, accept).ContinueWith(_ => { }, TaskScheduler.Default);
        var relay = towardsResponder ? connection.ToResponder : connection.ToInitiator;
        if (fault == "delay")
        {
            await relay.Delaying.WaitAsync(ChannelTestKit.Guard);
            Assert.False(opened.IsCompleted, "The open completed although the link held a handshake frame back.");
            gate.SetResult();
        }
        else if (fault is "drop" or "reorder")
        {
            await relay.WaitForFramesAsync(frame + 1);

            // The frame is gone or held back for a next one that never comes: the handshake timeout ends the wait.
            await kit.AdvanceUntilAsync(opened, TimeSpan.FromSeconds(1), 20);
        }

        await opened.WaitAsync(ChannelTestKit.Guard);
        var what = $"{fault} of frame {frame} towards the {(towardsResponder ? "responder" : "initiator")}";
        Assert.Equal(1, relay.FaultsApplied);
        if (connect.IsCompletedSuccessfully && accept.IsCompletedSuccessfully)
        {
            // Open on both sides (a delay, or a duplicate of ACCEPT the initiator never reads as one): the channel works
            // or ends with a reason, and never delivers out of order.
            await using var a = await connect;
            await using var b = await accept;
            var atBob = NumberedMessages.ReceiveAllAsync(b);
            var sent = await NumberedMessages.SendAsync(a, Count, Size).WaitAsync(ChannelTestKit.Guard);
            var closing = a.CloseAsync();
            await Task.WhenAll(a.Completion, b.Completion).WaitAsync(ChannelTestKit.Guard);
            await Record.ExceptionAsync(() => closing.WaitAsync(ChannelTestKit.Guard));
            await AssertDeliveryAsync(what, a, sent, b, await atBob.WaitAsync(ChannelTestKit.Guard));
            if (fault == "delay")
            {
                Assert.Equal(Count, a.MessagesAcknowledged);
            }

            return;
        }

        Assert.True(fault != "delay", $"{what}: a delay alone failed the open.");
        foreach (var (side, open) in new[] { ("initiator", (Task)connect), ("responder", accept) })
        {
            if (open.IsFaulted)
            {
                var failure = Assert.IsType<SecureChannelException>(open.Exception!.InnerException);
                Assert.True(
                    failure.Code is ChannelErrorCode.ProtocolError or ChannelErrorCode.ConnectionLost or ChannelErrorCode.HandshakeTimeout,
                    $"{what}: the {side} failed with {failure.Code} (from peer: {failure.FromPeer}): {failure.Message}");
            }
        }

        // A side that opened all the same learns of the failure and ends with a reason.
        foreach (var open in new[] { connect, accept }.Where(t => t.IsCompletedSuccessfully))
        {
            await using var channel = await open;
            await kit.AdvanceUntilAsync(channel.Completion, TimeSpan.FromSeconds(1), 120);
            Assert.NotEqual(ChannelErrorCode.Normal, (await channel.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        }
    }

    [Fact]
    public async Task ADelayLosesNothingAndTheLinkHoldsNoMoreThanThePipesLetItRead()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        const int Pause = 64 * 1024;
        const int Messages = 64;
        const int MessageSize = 16 * 1024;
        var gate = new TaskCompletionSource();
        var pipes = new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Pause / 2, useSynchronizationContext: false);
        var connection = new FaultyConnection(new FaultPlan().Delay(2, gate.Task), options: pipes);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), connection.Ends);
        await using (a)
        await using (b)
        {
            var early = 0;
            var atBob = NumberedMessages.ReceiveAllAsync(b, _ => Interlocked.Increment(ref early));
            var sending = NumberedMessages.SendAsync(a, Messages, MessageSize);

            // Alice fills her pipe to its pause threshold and waits: a fifth message cannot follow four.
            await ChannelTestKit.UntilAsync(() => a.MessagesSent >= 4);
            Assert.False(sending.IsCompleted, "Every send completed although the link passes nothing on.");
            Assert.Equal(0, Volatile.Read(ref early));
            gate.SetResult();

            Assert.Equal(Messages, (await sending.WaitAsync(ChannelTestKit.Guard)).Sent);
            await a.WaitForAcknowledgementAsync(Messages).AsTask().WaitAsync(ChannelTestKit.Guard);
            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            var received = await atBob.WaitAsync(ChannelTestKit.Guard);
            Assert.True(received.Failure is null && received.Numbers.SequenceEqual(Enumerable.Range(1, Messages)), received.ToString());

            // The link reads a batch at most: what the pipe held when it paused, and the one message written past it.
            var frame = ChannelFraming.FrameLength(MessageSize);
            var bound = Pause + (2 * frame);
            Assert.InRange(connection.ToResponder.MaxHeldBytes, frame, bound);
            Assert.True(bound < Messages * MessageSize / 4);
        }
    }

    [Fact]
    public async Task AReceiverThatStopsReadingHoldsAtMostItsQueueAndTheLinkAtMostItsPipesWhileTheSenderWaits()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        const int Pause = 16 * 1024;
        const int Capacity = 4;
        const int Messages = 64;
        const int MessageSize = 4 * 1024;
        var pipes = new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Pause / 2, useSynchronizationContext: false);

        // Bob's pump runs inline in the link's flush: a flush that does not complete means his pump waits on his queue.
        var bobInput = new PipeOptions(pauseWriterThreshold: Pause, resumeWriterThreshold: Pause / 2, readerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
        var connection = new FaultyConnection(options: pipes, responderInput: bobInput);
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob, settings: new() { ReceiveQueueCapacity = Capacity }), connection.Ends);
        await using (a)
        await using (b)
        {
            var sending = NumberedMessages.SendAsync(a, Messages, MessageSize);
            await connection.ToResponder.Blocked.WaitAsync(ChannelTestKit.Guard);
            Assert.False(sending.IsCompleted, "Every send completed although the receiver reads nothing.");
            Assert.InRange(b.MessagesReceived, 0, Capacity);

            // Nothing is confirmed beyond what bob's queue accepted.
            Assert.InRange(a.MessagesAcknowledged, 0, b.MessagesReceived);
            var frame = ChannelFraming.FrameLength(MessageSize);
            Assert.InRange(connection.ToResponder.MaxHeldBytes, 0, Pause + (2 * frame));

            var received = NumberedMessages.ReceiveAllAsync(b);
            Assert.Equal(Messages, (await sending.WaitAsync(ChannelTestKit.Guard)).Sent);
            await a.WaitForAcknowledgementAsync(Messages).AsTask().WaitAsync(ChannelTestKit.Guard);
            await a.CloseAsync().WaitAsync(ChannelTestKit.Guard);
            var outcome = await received.WaitAsync(ChannelTestKit.Guard);
            Assert.True(outcome.Failure is null && outcome.Numbers.SequenceEqual(Enumerable.Range(1, Messages)), outcome.ToString());
            Assert.InRange(connection.ToResponder.MaxHeldBytes, 0, Pause + (2 * frame));
        }
    }

    [Fact]
    public async Task ACutMidFrameAtAChosenByteEndsBothSidesWithConnectionLostAfterTheWholeMessagesBeforeIt()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);

        // docs/protocol.md §8.7: message 1 is 2 + 39 bytes on the wire, message 3 is 2 + 832. The byte chosen is in
        // the second record of the second 150 000-byte message.
        const int Records = 2 + 39 + 2 + 832;
        var record = ChannelFraming.FrameLength(ChannelFraming.MaxFragmentLength);
        var last = ChannelFraming.FrameLength(Large - (2 * ChannelFraming.MaxFragmentLength));
        long offset = Records + (2 * record) + last + record + 1000;
        var connection = new FaultyConnection(
            new FaultPlan().CutMidFrame(FrameSelector.AtByte(offset), 500, new IOException("Connection reset by the faulty link.")),
            initiatorOutput: new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0));
        var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), connection.Ends);
        await using (a)
        await using (b)
        {
            var atBob = NumberedMessages.ReceiveAllAsync(b);
            var sent = await NumberedMessages.SendAsync(a, Count, Large).WaitAsync(ChannelTestKit.Guard);
            var received = await atBob.WaitAsync(ChannelTestKit.Guard);
            Assert.True(received.Numbers.SequenceEqual([1]), received.ToString());
            Assert.Equal(ChannelErrorCode.ConnectionLost, received.Failure?.Code);
            Assert.Equal(ChannelErrorCode.ConnectionLost, (await a.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
            Assert.InRange(a.MessagesAcknowledged, 0, 1);
            Assert.True(sent.Sent <= a.MessagesSent);
            await Assert.ThrowsAsync<SecureChannelException>(async () => await a.WaitForAcknowledgementAsync(a.MessagesSent).AsTask().WaitAsync(ChannelTestKit.Guard));
        }
    }

    // Where each point is: the direction, and a selector robust to the ACKs that interleave when both sides send.
    private static (bool TowardsResponder, FrameSelector At) Where(Point point) => point switch
    {
        Point.FirstMessage => (true, FrameSelector.NthLongerThan(1, Size, from: 2)),
        Point.AfterAccept => (false, 2),
        Point.MidMessage => (true, FrameSelector.NthLongerThan(4, ushort.MaxValue - 1)),
        Point.Rekey => (true, FrameSelector.FirstOfLength(RekeyFrame)),
        Point.AfterRekey => (true, FrameSelector.After(FrameSelector.FirstOfLength(RekeyFrame))),
        Point.CredentialUpdate => (true, FrameSelector.NthLongerThan(1, MessageRecord, from: 2)),
        Point.AfterCredentialUpdate => (true, FrameSelector.After(FrameSelector.NthLongerThan(1, MessageRecord, from: 2))),
        Point.Close => (true, FrameSelector.FirstOfLength(CloseFrame)),
        Point.CloseAnswer => (false, FrameSelector.FirstOfLength(CloseFrame)),
        _ => throw new ArgumentOutOfRangeException(nameof(point)),
    };

    private static FaultPlan Plan(string fault, FrameSelector at, Task gate) => fault switch
    {
        "delay" => new FaultPlan().Delay(at, gate),
        "reorder" => new FaultPlan().Reorder(at),
        "duplicate" => new FaultPlan().Duplicate(at),
        "truncate" => new FaultPlan().Truncate(at, 1),
        "cut-mid-frame" => new FaultPlan().CutMidFrame(at, 10),
        "corrupt" => new FaultPlan().Corrupt(at, bodyOffset: 0),
        "corrupt-at-end" => new FaultPlan().Corrupt(at, bodyOffset: -1, mask: 0x80),
        "drop" => new FaultPlan().Drop(at),
        "cut" => new FaultPlan().Cut(at),
        "cut-with-error" => new FaultPlan().Cut(at, new IOException("Connection reset by the faulty link.")),
        _ => throw new ArgumentOutOfRangeException(nameof(fault)),
    };

    // The delivery property for one direction, once the channel has ended.
    private static async Task AssertDeliveryAsync(string what, SecureChannel sender, NumberedMessages.SendOutcome sent, SecureChannel receiver, NumberedMessages.ReceiveOutcome received)
    {
        var direction = sender.IsInitiator ? "alice to bob" : "bob to alice";

        // Exactly 1..k, each once, in order.
        Assert.True(received.IsPrefix, $"{what}, {direction}: {received}");
        var k = received.Numbers.Count;
        Assert.True(k <= sent.Sent + 1 && sent.Sent <= sender.MessagesSent, $"{what}, {direction}: {k} received, {sent.Sent} sends returned, {sender.MessagesSent} written.");
        Assert.Equal(k, receiver.MessagesReceived);

        // What the sender was told: 1..N confirmed, all of which arrived; N+1..MessagesSent are the ones it cannot count on.
        var acknowledged = sender.MessagesAcknowledged;
        Assert.True(acknowledged <= k, $"{what}, {direction}: {acknowledged} confirmed but only {k} received.");
        if (acknowledged < sender.MessagesSent)
        {
            var told = await Assert.ThrowsAsync<SecureChannelException>(async () => await sender.WaitForAcknowledgementAsync(sender.MessagesSent).AsTask().WaitAsync(ChannelTestKit.Guard));
            Assert.Equal((await sender.Completion).Code, told.Code);
        }

        // The receiver's reason is the one its Completion gives.
        var end = await receiver.Completion;
        Assert.Equal(end.Code == ChannelErrorCode.Normal ? null : end.Code, received.Failure?.Code);
    }

    private static void AssertEnds(string what, string fault, Point point, ChannelCloseInfo alice, ChannelCloseInfo bob)
    {
        var message = $"{what}: alice ended with {alice.Code} (from peer: {alice.FromPeer}: {alice.Reason}), bob with {bob.Code} (from peer: {bob.FromPeer}: {bob.Reason}).";
        Assert.True(Enum.IsDefined(alice.Code) && Enum.IsDefined(bob.Code), message);
        if (fault == "delay")
        {
            Assert.True(alice.Code == ChannelErrorCode.Normal && bob.Code == ChannelErrorCode.Normal, message);
            return;
        }

        // A record altered, lost, repeated or out of place in the middle of the stream is a ProtocolError at the side
        // that reads it, which tells the other side; a cut loses the connection on both sides.
        var midStream = point is Point.FirstMessage or Point.MidMessage or Point.AfterRekey or Point.AfterCredentialUpdate or Point.Rekey or Point.CredentialUpdate;
        if (midStream && fault is "cut" or "cut-with-error" or "cut-mid-frame")
        {
            Assert.True(alice.Code == ChannelErrorCode.ConnectionLost && bob.Code == ChannelErrorCode.ConnectionLost, message);
        }
        else if (midStream)
        {
            Assert.True(bob.Code == ChannelErrorCode.ProtocolError && !bob.FromPeer && alice.Code == ChannelErrorCode.ProtocolError && alice.FromPeer, message);
        }
    }
}
