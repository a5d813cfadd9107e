using System.Text;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>Agents that can reach only a relay (or two relays apart) exchange end-to-end encrypted messages.</summary>
public sealed class RelayEndToEndTests
{
    [Fact]
    public async Task Two_agents_exchange_messages_through_one_relay()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"], principal: "user:bob");
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        Assert.Equal("relay-a", linkB.Welcome.Relay);
        Assert.Equal([bob.Identity.Identifier.ToString()], linkB.Welcome.Addresses);

        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());
        await using (a)
        await using (b)
        {
            Assert.Equal(bob.Identity.Identifier, a.Peer.Identifier);
            Assert.Equal(alice.Identity.Identifier, b.Peer.Identifier);
            var big = RelayTestKit.Pattern(1 << 20, 7);
            await a.SendAsync(big);
            await b.SendAsync("pong"u8.ToArray());
            using (var received = await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard))
            {
                Assert.Equal(big, received!.Payload.ToArray());
            }

            using (var reply = await a.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard))
            {
                Assert.Equal("pong"u8.ToArray(), reply!.Payload.ToArray());
            }
        }
    }

    [Fact]
    public async Task The_target_sees_the_opener_as_the_relay_verified_it()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var alice = await kit.CreateAgentAsync(["role=agent"], principal: "team:acme");
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);
        var linkB = await kit.ConnectAsync(bob, relay);

        var (_, _, incoming) = await RelayTestKit.CircuitAsync(linkA, linkB, bob.Identity.Identifier.ToString());

        Assert.Equal(alice.Identity.Identifier.ToString(), incoming.Opener);
        Assert.Equal("team:acme", incoming.Principal);
        Assert.Empty(incoming.Via);
        Assert.Empty(linkA.Welcome.Addresses);
    }

    [Fact]
    public async Task The_longest_principal_reaches_the_target_without_ending_its_hop()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var principal = "system:" + new string('p', 256);
        var alice = await kit.CreateAgentAsync(["role=agent"], principal: principal);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay, listen: false);
        var linkB = await kit.ConnectAsync(bob, relay);

        var (_, _, incoming) = await RelayTestKit.CircuitAsync(linkA, linkB, bob.Identity.Identifier.ToString());

        Assert.Equal(principal, incoming.Principal);
        Assert.False(linkB.Completion.IsCompleted);
    }

    [Fact]
    public async Task Agents_two_relays_apart_exchange_messages_and_the_target_sees_the_route()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var (relayA, relayB) = await kit.StartLinkedRelaysAsync();

        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent", "relay-name=billing"]);
        var linkA = await kit.ConnectAsync(alice, relayA);
        var linkB = await kit.ConnectAsync(bob, relayB, names: ["billing"]);

        var (opened, accepted, incoming) = await RelayTestKit.CircuitAsync(linkA, linkB, "billing@relay-b");
        Assert.Equal(["relay-a"], incoming.Via);
        Assert.Equal(alice.Identity.Identifier.ToString(), incoming.Opener);
        await opened.DisposeAsync();
        await accepted.DisposeAsync();

        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, bob.Identity.Identifier + "@relay-b");
        await using (a)
        await using (b)
        {
            await a.SendAsync(Encoding.UTF8.GetBytes("across two relays"));
            using var received = await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            Assert.Equal("across two relays", Encoding.UTF8.GetString(received!.Payload.Span));
            Assert.Equal(alice.Identity.Identifier, b.Peer.Identifier);
        }
    }

    [Fact]
    public async Task The_relay_never_holds_a_circuit_payload_in_the_clear()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var seen = new List<byte[]>();
        relay.Switch.FrameObserver = frame =>
        {
            lock (seen)
            {
                seen.Add(frame.ToArray());
            }
        };
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var linkB = await kit.ConnectAsync(bob, relay);
        var marker = Encoding.ASCII.GetBytes("PLAINTEXT-MARKER-7f3a9c");

        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());
        await using (a)
        await using (b)
        {
            for (var i = 0; i < 20; i++)
            {
                await a.SendAsync(marker);
                await b.SendAsync(marker);
            }

            for (var i = 0; i < 20; i++)
            {
                (await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard))!.Dispose();
                (await a.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard))!.Dispose();
            }
        }

        byte[][] frames;
        lock (seen)
        {
            frames = [.. seen];
        }

        // The relay handled the circuit's frames (so the tap saw the traffic) but never the marker.
        Assert.Contains(frames, f => f[0] == (byte)RelayFrameType.Data);
        Assert.DoesNotContain(frames, f => f.AsSpan().IndexOf(marker) >= 0);

        // What the relay saw of the end-to-end handshake never lets it stand in for either agent: each side
        // authenticated the other's identity, not the relay's.
        Assert.NotEqual(relay.Server.Identifier, alice.Identity.Identifier);
    }
}
