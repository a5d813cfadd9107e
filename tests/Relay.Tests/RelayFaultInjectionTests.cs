using System.Text;
using SecureChannels.Protocol.Channel;
using SecureChannels.Testing;

namespace SecureChannels.Relay.Tests;

/// <summary>
/// A faulty link on a hop (an agent's, or the link between two relays) while numbered messages stream both ways
/// end to end over a circuit: each receiver gets exactly 1..k in order, both channels end with a reason, the relay
/// forgets the broken circuit (its other end is told, docs/protocol.md §9.4) and keeps serving new ones.
/// </summary>
public sealed class RelayFaultInjectionTests
{
    // The hop batches circuit data into frames up to its limit; every handshake and control frame is far smaller
    // than a batch. 400 kB each way is more than a circuit's window, so frames keep coming after the target.
    private const int Size = 2000;
    private const int Count = 200;
    private const int Target = 2;

    public static TheoryData<string, bool> HopFaults()
    {
        var data = new TheoryData<string, bool>();
        foreach (var fault in Faults)
        {
            data.Add(fault, true);
            data.Add(fault, false);
        }

        return data;
    }

    private static readonly string[] Faults = ["corrupt", "corrupt-tag", "drop", "duplicate", "reorder", "truncate", "cut-mid-frame", "cut", "cut-with-error", "reset"];

    [Theory]
    [MemberData(nameof(HopFaults))]
    public async Task A_fault_on_an_agents_hop_ends_both_channels_after_an_in_order_prefix_and_frees_the_circuit(string fault, bool towardsRelay)
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var plan = Plan(fault);
        var (near, link) = FaultyLink.Interpose(await RelayTestKit.ConnectTcpAsync(relay.Server.HopEndPoint!), towardsRelay ? plan : null, towardsRelay ? null : plan);
        var linkA = await kit.ConnectAsync(alice, relay, through: near);
        var linkB = await kit.ConnectAsync(bob, relay);
        var (a, b, _, accepted) = await kit.EndToEndOverCircuitAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());

        await AssertStreamsBreakCleanlyAsync(a, b, $"{fault} towards the {(towardsRelay ? "relay" : "agent")}");
        Assert.Equal(1, (towardsRelay ? link.LeftToRight : link.RightToLeft).FaultsApplied);
        Assert.NotEqual(Protocol.Circuits.RelayErrorCode.Normal, (await accepted.Completion.WaitAsync(RelayTestKit.Guard)).Code);
        await link.Completion.WaitAsync(RelayTestKit.Guard);

        // No half-open circuit: bob's end was reset, the relay holds no circuit and only bob's hop.
        await RelayTestKit.UntilAsync(() => relay.Server.CircuitEndCount == 0 && relay.Server.ConnectionCount == 1);
        Assert.False(linkB.Completion.IsCompleted, "Bob's hop ended although only alice's was faulty.");
        Assert.True(link.MaxHeldBytes < 512 * 1024, $"The link held {link.MaxHeldBytes} bytes.");

        // The relay keeps serving: alice comes back on a sound hop and talks to bob again.
        var again = await kit.ConnectAsync(alice, relay);
        await AssertNewCircuitWorksAsync(kit, alice, again, bob, linkB, bob.Identity.Identifier.ToString());
        await b.DisposeAsync();
        await a.DisposeAsync();
    }

    [Fact]
    public async Task A_delay_on_an_agents_hop_loses_nothing()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var gate = new TaskCompletionSource();
        var (near, link) = FaultyLink.Interpose(await RelayTestKit.ConnectTcpAsync(relay.Server.HopEndPoint!), new FaultPlan().Delay(FrameSelector.NthLongerThan(1, Size), gate.Task));
        var linkA = await kit.ConnectAsync(alice, relay, through: near);
        var linkB = await kit.ConnectAsync(bob, relay);
        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());
        await using (a)
        await using (b)
        {
            // Small enough that every send completes into the buffers while the link holds the stream back.
            const int Few = 12;
            var early = 0;
            var receiving = NumberedMessages.ReceiveAllAsync(b, _ => Interlocked.Increment(ref early));
            var sent = await NumberedMessages.SendAsync(a, Few, Size).WaitAsync(RelayTestKit.Guard);
            Assert.Equal(Few, sent.Sent);

            // The first frame of circuit data is held, and every frame after it: nothing has reached bob yet.
            Assert.Equal(0, Volatile.Read(ref early));
            gate.SetResult();

            await a.CloseAsync().WaitAsync(RelayTestKit.Guard);
            var received = await receiving.WaitAsync(RelayTestKit.Guard);
            Assert.True(received.Failure is null && received.Numbers.SequenceEqual(Enumerable.Range(1, Few)), received.ToString());
            Assert.Equal(ChannelErrorCode.Normal, (await b.Completion.WaitAsync(RelayTestKit.Guard)).Code);
            Assert.Equal(Few, a.MessagesAcknowledged);
        }
    }

    public static TheoryData<string, bool> PeerLinkFaults()
    {
        var data = new TheoryData<string, bool>();
        foreach (var fault in new[] { "corrupt", "drop", "duplicate", "cut-mid-frame", "cut" })
        {
            data.Add(fault, true);
            data.Add(fault, false);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(PeerLinkFaults))]
    public async Task A_fault_on_the_link_between_two_relays_ends_both_channels_after_an_in_order_prefix_and_the_relays_link_again(string fault, bool towardsDialed)
    {
        await using var kit = await RelayTestKit.CreateAsync();
        // Relay A dials B through the proxy: its first connection misbehaves, later ones are sound.
        var plan = Plan(fault);
        FaultyTcpProxy? started = null;
        var (relayA, relayB) = await kit.StartLinkedRelaysAsync(b => (started = new FaultyTcpProxy(b, n => n == 0 ? (towardsDialed ? plan : null, towardsDialed ? null : plan) : (null, null))).EndPoint);
        await using var proxy = started!;

        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relayA);
        var linkB = await kit.ConnectAsync(bob, relayB);
        var address = bob.Identity.Identifier + "@relay-b";
        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, address);

        await AssertStreamsBreakCleanlyAsync(a, b, $"{fault} towards the {(towardsDialed ? "dialed" : "dialing")} relay");
        await proxy.Links[0].Completion.WaitAsync(RelayTestKit.Guard);
        Assert.Equal(1, (towardsDialed ? proxy.Links[0].LeftToRight : proxy.Links[0].RightToLeft).FaultsApplied);
        await RelayTestKit.UntilAsync(() => relayA.Server.CircuitEndCount == 0 && relayB.Server.CircuitEndCount == 0);
        Assert.False(linkA.Completion.IsCompleted || linkB.Completion.IsCompleted, "An agent's hop ended although only the relays' link was faulty.");

        // Relay A dials again after its back-off (one second on the fake clock), through a sound connection.
        await RelayTestKit.UntilAsync(() => !relayA.Server.IsLinked("relay-b"));
        // The dialer's back-off timer is armed just after the link ended: step the clock a second at a time, each
        // step followed by a bounded look for the dial (real I/O), until it comes.
        for (var step = 0; step < 30 && proxy.Links.Count < 2; step++)
        {
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            for (var look = 0; look < 100 && proxy.Links.Count < 2; look++)
            {
                await Task.Delay(1);
            }
        }

        await proxy.WaitForLinksAsync(2);
        await RelayTestKit.UntilAsync(() => relayA.Server.IsLinked("relay-b") && relayB.Server.IsLinked("relay-a"));
        await AssertNewCircuitWorksAsync(kit, alice, linkA, bob, linkB, address);
        await b.DisposeAsync();
        await a.DisposeAsync();
    }

    private static FaultPlan Plan(string fault)
    {
        var at = FrameSelector.NthLongerThan(Target, Size);
        return fault switch
        {
            "corrupt" => new FaultPlan().Corrupt(at, bodyOffset: 10),
            "corrupt-tag" => new FaultPlan().Corrupt(at, bodyOffset: -1),
            "drop" => new FaultPlan().Drop(at),
            "duplicate" => new FaultPlan().Duplicate(at),
            "reorder" => new FaultPlan().Reorder(at),
            "truncate" => new FaultPlan().Truncate(at, 1),
            "cut-mid-frame" => new FaultPlan().CutMidFrame(at, 100),
            "cut" => new FaultPlan().Cut(at),
            "cut-with-error" => new FaultPlan().Cut(at, new IOException("Connection reset by the faulty link.")),
            "reset" => new FaultPlan().Cut(at, new IOException("Connection reset by the faulty link."), resetWriters: true),
            _ => throw new ArgumentOutOfRangeException(nameof(fault)),
        };
    }

    // Both ends stream numbered messages at once; the fault breaks the hop under them.
    private static async Task AssertStreamsBreakCleanlyAsync(SecureChannel a, SecureChannel b, string what)
    {
        var atBob = NumberedMessages.ReceiveAllAsync(b);
        var atAlice = NumberedMessages.ReceiveAllAsync(a);
        var fromAlice = NumberedMessages.SendAsync(a, Count, Size);
        var fromBob = NumberedMessages.SendAsync(b, Count, Size);
        await Task.WhenAll(atBob, atAlice, fromAlice, fromBob).WaitAsync(RelayTestKit.Guard);

        foreach (var (sender, channel, sent, receiver, received) in new[] { ("alice", a, fromAlice.Result, "bob", atBob.Result), ("bob", b, fromBob.Result, "alice", atAlice.Result) })
        {
            // Exactly 1..k, each once, in order; the broken hop cost some.
            Assert.True(received.IsPrefix, $"{what}: {receiver} {received}");
            var k = received.Numbers.Count;
            Assert.True(sent.Sent <= channel.MessagesSent && k <= channel.MessagesSent, $"{what}: {receiver} got {k}, {sent.Sent} sends by {sender} returned, {channel.MessagesSent} written.");
            Assert.True(k < Count, $"{what}: {receiver} got every message although the hop broke.");
            Assert.True(received.Failure is { Code: not ChannelErrorCode.Normal }, $"{what}: {receiver} {received}");

            // The sender's account: every message confirmed arrived; past the confirmed ones it is told it cannot count on them.
            Assert.True(channel.MessagesAcknowledged <= k, $"{what}: {channel.MessagesAcknowledged} of {sender}'s messages confirmed, {k} received.");
            if (channel.MessagesAcknowledged < channel.MessagesSent)
            {
                await Assert.ThrowsAsync<SecureChannelException>(async () => await channel.WaitForAcknowledgementAsync(channel.MessagesSent).AsTask().WaitAsync(RelayTestKit.Guard));
            }
        }

        var endA = await a.Completion.WaitAsync(RelayTestKit.Guard);
        var endB = await b.Completion.WaitAsync(RelayTestKit.Guard);
        Assert.True(endA.Code == ChannelErrorCode.ConnectionLost && endB.Code == ChannelErrorCode.ConnectionLost, $"{what}: alice ended with {endA}, bob with {endB}.");
    }

    private static async Task AssertNewCircuitWorksAsync(RelayTestKit kit, RelayTestKit.Agent alice, Protocol.Circuits.RelayLink linkA, RelayTestKit.Agent bob, Protocol.Circuits.RelayLink linkB, string address)
    {
        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, address);
        await using (a)
        await using (b)
        {
            await a.SendAsync(Encoding.UTF8.GetBytes("after the fault"));
            using var received = await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            Assert.Equal("after the fault", Encoding.UTF8.GetString(received!.Payload.Span));
        }
    }
}
