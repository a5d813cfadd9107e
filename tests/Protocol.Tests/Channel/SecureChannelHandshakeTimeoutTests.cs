using System.Collections.Concurrent;
using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Testing;

namespace SecureChannels.Protocol.Tests.Channel;

/// <summary>A peer that stalls mid-handshake holds nothing longer than <see cref="SecureChannelOptions.HandshakeTimeout"/> (fake time only).</summary>
public sealed class SecureChannelHandshakeTimeoutTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private static readonly ChannelTestKit.ChannelSettings Settings = new() { HandshakeTimeout = Timeout };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task APeerThatNeverAnswersFailsTheOpenWithHandshakeTimeoutOnlyOnceTheTimeoutPasses(bool initiator)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var events = new ConcurrentQueue<ChannelEvent>();
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        var open = initiator
            ? SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice, events: events.Enqueue, settings: Settings))
            : SecureChannel.AcceptAsync(responderEnd, kit.Options(alice, events: events.Enqueue, settings: Settings));

        await kit.AdvanceAsync(TimeSpan.FromSeconds(1), 4);
        Assert.False(open.IsCompleted, "The open ended before its handshake timeout.");

        await kit.AdvanceUntilAsync(open, TimeSpan.FromSeconds(1), 10);
        var failure = await Assert.ThrowsAsync<SecureChannelException>(() => open);
        Assert.Equal(ChannelErrorCode.HandshakeTimeout, failure.Code);
        Assert.False(failure.FromPeer);
        var denied = Assert.Single(events);
        Assert.Equal(ChannelEventKind.Denied, denied.Kind);
        Assert.Equal(ChannelErrorCode.HandshakeTimeout, denied.Code);
    }

    [Fact]
    public async Task ACallerThatCancelsWhileWaitingForAcceptGetsItsCancellationNotAHandshakeTimeout()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var (initiatorEnd, responderEnd) = ChannelTestKit.CreateConnection();
        using var giveUp = new CancellationTokenSource();
        var connect = SecureChannel.ConnectAsync(initiatorEnd, kit.Options(alice, settings: Settings), giveUp.Token);

        // The responder completes the handshake but never sends ACCEPT: the initiator waits for it.
        using var rogue = await RoguePeer.RespondAsync(responderEnd, kit.Options(bob)).WaitAsync(ChannelTestKit.Guard);
        Assert.False(connect.IsCompleted);
        await giveUp.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect.WaitAsync(ChannelTestKit.Guard));
    }

    public static TheoryData<bool, int> StallPoints => new()
    {
        // towards the responder?, first frame held (0: message 1 / message 2; 1: message 3 / ACCEPT)
        { true, 0 },
        { false, 0 },
        { true, 1 },
        { false, 1 },
    };

    [Theory]
    [MemberData(nameof(StallPoints))]
    public async Task AStallMidHandshakeFailsTheWaitingSidesWithHandshakeTimeout(bool towardsResponder, int heldFrame)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var hold = new FaultPlan().Drop(FrameSelector.From(heldFrame));
        var mitm = towardsResponder ? new FaultyConnection(toResponder: hold) : new FaultyConnection(toInitiator: hold);
        var accept = SecureChannel.AcceptAsync(mitm.Responder, kit.Options(bob, settings: Settings));
        var connect = SecureChannel.ConnectAsync(mitm.Initiator, kit.Options(alice, settings: Settings));

        // Let the handshake reach the stall (in real time, with no fake time passing), then let the clock run.
        await (towardsResponder ? mitm.ToResponder : mitm.ToInitiator).WaitForFramesAsync(heldFrame + 1);
        var responderOpens = !towardsResponder && heldFrame == 1;
        await using var responder = responderOpens ? await accept.WaitAsync(ChannelTestKit.Guard) : null;

        await kit.AdvanceUntilAsync(Task.WhenAll(connect, accept).ContinueWith(_ => { }, TaskScheduler.Default), TimeSpan.FromSeconds(1), 20);
        var initiatorFailure = await Assert.ThrowsAsync<SecureChannelException>(() => connect);
        Assert.Equal(ChannelErrorCode.HandshakeTimeout, initiatorFailure.Code);
        if (!responderOpens)
        {
            var responderFailure = await Assert.ThrowsAsync<SecureChannelException>(() => accept);
            Assert.Equal(ChannelErrorCode.HandshakeTimeout, responderFailure.Code);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AnOpenThatTimesOutReleasesThePipe(bool initiator)
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var inbound = new Pipe();
        var outbound = new Pipe();
        var end = new ChannelTestKit.DuplexPipe(inbound.Reader, outbound.Writer);
        var open = initiator
            ? SecureChannel.ConnectAsync(end, kit.Options(alice, settings: Settings))
            : SecureChannel.AcceptAsync(end, kit.Options(alice, settings: Settings));
        await kit.AdvanceUntilAsync(open, TimeSpan.FromSeconds(1), 10);
        Assert.Equal(ChannelErrorCode.HandshakeTimeout, (await Assert.ThrowsAsync<SecureChannelException>(() => open)).Code);

        // The channel's reader is completed: a writer towards it learns that nobody reads any more.
        var flush = await inbound.Writer.WriteAsync(new byte[] { 0 }).AsTask().WaitAsync(ChannelTestKit.Guard);
        Assert.True(flush.IsCompleted, "After a failed open, the channel's pipe reader was left open (never completed).");

        // And its writer is completed: the other end reads to the end.
        ReadResult read;
        do
        {
            read = await outbound.Reader.ReadAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            outbound.Reader.AdvanceTo(read.Buffer.End);
        }
        while (!read.IsCompleted);
    }

    [Fact]
    public async Task AnInitiatorWhoseResponderNeverAcceptsTimesOutAndReleasesThePipe()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var toInitiator = new Pipe();
        var toResponder = new Pipe();
        var rogueOpen = RoguePeer.RespondAsync(new ChannelTestKit.DuplexPipe(toResponder.Reader, toInitiator.Writer), kit.Options(bob));
        var connect = SecureChannel.ConnectAsync(new ChannelTestKit.DuplexPipe(toInitiator.Reader, toResponder.Writer), kit.Options(alice, settings: Settings));

        // The responder completes the handshake but never sends ACCEPT.
        using var rogue = await rogueOpen.WaitAsync(ChannelTestKit.Guard);
        await kit.AdvanceUntilAsync(connect, TimeSpan.FromSeconds(1), 10);
        Assert.Equal(ChannelErrorCode.HandshakeTimeout, (await Assert.ThrowsAsync<SecureChannelException>(() => connect)).Code);

        var flush = await toInitiator.Writer.WriteAsync(new byte[] { 0 }).AsTask().WaitAsync(ChannelTestKit.Guard);
        Assert.True(flush.IsCompleted, "After a failed open, the channel's pipe reader was left open (never completed).");
    }
}
