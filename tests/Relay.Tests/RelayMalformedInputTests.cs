using System.Net.Sockets;
using System.Security.Cryptography;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Relay.Tests;

/// <summary>Broken peers end their own hop and nothing else (docs/protocol.md §9.1, §9.2, §9.5).</summary>
public sealed class RelayMalformedInputTests
{
    [Theory]
    [InlineData("unknown-type")]
    [InlineData("empty")]
    [InlineData("truncated-open")]
    [InlineData("open-trailing-byte")]
    [InlineData("open-even-id")]
    [InlineData("second-hello")]
    [InlineData("short-ping")]
    [InlineData("close-with-body")]
    public async Task A_malformed_frame_after_WELCOME_gets_GOAWAY_ProtocolViolation_and_the_hop_closes(string kind)
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var (bob, linkB) = await ListenerAsync(kit, relay);
        var mallory = await kit.CreateAgentAsync(["role=agent"]);
        var hop = await kit.OpenRawHopAsync(mallory, relay);
        await hop.HelloAsync();
        var open = RelayFrames.Open(1, new OpenFrame(bob.Identity.Identifier.ToString(), 65536, null, null, []));

        await hop.SendAsync(kind switch
        {
            "unknown-type" => [0x7f],
            "empty" => [],
            "truncated-open" => [0x10, 0x00, 0x00, 0x00],
            "open-trailing-byte" => [.. open, 0x00],
            "open-even-id" => RelayFrames.Open(2, new OpenFrame(bob.Identity.Identifier.ToString(), 65536, null, null, [])),
            "second-hello" => RelayFrames.Hello(new HelloFrame(true, [], null)),
            "short-ping" => [0x04, 0x01, 0x02],
            "close-with-body" => [.. RelayFrames.Close(7), 0x00],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        });

        Assert.Equal(RelayErrorCode.ProtocolViolation, (await hop.ExpectGoAwayAsync()).Code);
        await hop.ExpectClosedAsync();
        await RelayTestKit.UntilAsync(() => relay.Server.ConnectionCount == 1);
        await StillServesAsync(kit, relay, bob, linkB);
    }

    /// <summary>§9.1: "The relay answers WELCOME, or GOAWAY and closes" — also when the HELLO itself is malformed.</summary>
    [Theory]
    [InlineData("non-canonical-hello")]
    [InlineData("hello-trailing-byte")]
    [InlineData("empty")]
    [InlineData("unknown-type")]
    [InlineData("open-before-hello")]
    public async Task A_malformed_first_frame_gets_GOAWAY_ProtocolViolation_and_the_hop_closes(string kind)
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var mallory = await kit.CreateAgentAsync(["role=agent"]);
        var hop = await kit.OpenRawHopAsync(mallory, relay);
        var hello = RelayFrames.Hello(new HelloFrame(true, [], null));
        Assert.Equal([0x01, 0x94, 0x01, 0x01, 0x90, 0xc0], hello);

        await hop.SendAsync(kind switch
        {
            "non-canonical-hello" => [0x01, 0x94, 0xcc, 0x01, 0x01, 0x90, 0xc0], // version as uint8, not fixint
            "hello-trailing-byte" => [.. hello, 0x00],
            "empty" => [],
            "unknown-type" => [0x7f],
            "open-before-hello" => RelayFrames.Open(1, new OpenFrame("nobody", 65536, null, null, [])),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        });

        Assert.Equal(RelayErrorCode.ProtocolViolation, (await hop.ExpectGoAwayAsync()).Code);
        await hop.ExpectClosedAsync();
        Assert.Equal(0, relay.Server.ConnectionCount);
    }

    [Fact]
    public async Task A_hop_message_larger_than_MaxFrameLength_ends_the_hop()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["MaxDataLength"] = "4096" });
        var (bob, linkB) = await ListenerAsync(kit, relay);
        var mallory = await kit.CreateAgentAsync(["role=agent"]);
        var hop = await kit.OpenRawHopAsync(mallory, relay);
        var welcome = await hop.HelloAsync();
        Assert.Equal(4096u, welcome.MaxData);

        var frame = new byte[(32 * 1024) + 1]; // MaxFrameLength + 1: max(MaxDataLength + 64, 32 KiB)
        RelayFrames.WriteDataHeader(frame, 1);
        await hop.SendAsync(frame);

        await hop.ExpectClosedAsync();
        var end = await hop.Channel.Completion.WaitAsync(RelayTestKit.Guard);
        Assert.NotEqual(ChannelErrorCode.Normal, end.Code);
        await RelayTestKit.UntilAsync(() => relay.Server.ConnectionCount == 1);
        await StillServesAsync(kit, relay, bob, linkB);
    }

    [Fact]
    public async Task Garbage_before_any_handshake_closes_that_connection_and_the_relay_serves_others()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        using var tcp = await RelayTestKit.ConnectTcpClientAsync(relay.Server.HopEndPoint!);
        var stream = tcp.GetStream();

        // More than any handshake message may be: the relay has a whole (bad) message to reject, whatever its framing.
        try
        {
            await stream.WriteAsync(RandomNumberGenerator.GetBytes(128 * 1024)).AsTask().WaitAsync(RelayTestKit.Guard);
        }
        catch (IOException)
        {
            // Closed while we were still writing: what the test wants to see.
        }

        await ExpectClosedAsync(tcp);
        var (bob, linkB) = await ListenerAsync(kit, relay);
        await StillServesAsync(kit, relay, bob, linkB);
    }

    [Fact]
    public async Task Sockets_beyond_MaxPendingHandshakes_are_closed_at_once_and_agents_connect_once_the_idle_ones_leave()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?> { ["MaxPendingHandshakes"] = "2" });
        var idle = new List<TcpClient>();
        try
        {
            // Three silent sockets against two places: exactly one is closed at once, whatever the accept order, and
            // then the other two are known to hold both places (they send nothing, and fake time does not move).
            var refusedAtConnect = 0;
            for (var i = 0; i < 3; i++)
            {
                try
                {
                    idle.Add(await RelayTestKit.ConnectTcpClientAsync(relay.Server.HopEndPoint!));
                }
                catch (SocketException)
                {
                    refusedAtConnect++; // the relay's close raced the connect's completion: refused all the same
                }
            }

            var reads = idle.Select(ReadOnceAsync).ToList();
            if (refusedAtConnect == 0)
            {
                var first = await Task.WhenAny(reads).WaitAsync(RelayTestKit.Guard);
                Assert.Equal(0, await first);
            }

            Assert.True(refusedAtConnect <= 1);
            Assert.Equal(2, reads.Count(r => !r.IsCompleted));

            // Now every further socket is refused before any cryptography.
            for (var i = 0; i < 3; i++)
            {
                await ExpectRefusedAsync(relay);
            }

            var agent = await kit.CreateAgentAsync(["role=agent"]);
            // The refused socket is reset while connecting (SocketException) or fails the handshake with the
            // documented error, whichever the race between the relay's close and the connect's completion gives.
            try
            {
                var pipe = await RelayTestKit.ConnectTcpAsync(relay.Server.HopEndPoint!);
                var turnedAway = await Assert.ThrowsAsync<SecureChannelException>(() => kit.OpenHopAsync(agent, relay, pipe));
                Assert.Equal(ChannelErrorCode.ConnectionLost, turnedAway.Code);
            }
            catch (SocketException)
            {
                // Reset at connect: refused before any byte.
            }
            Assert.Equal(2, reads.Count(r => !r.IsCompleted));
            foreach (var socket in idle)
            {
                socket.Dispose();
            }

            // The relay notices the closed sockets on its own; an agent gets through once it has.
            Task<RelayLink>? attempt = null;
            await RelayTestKit.UntilAsync(() =>
            {
                attempt ??= kit.ConnectAsync(agent, relay);
                if (!attempt.IsCompleted)
                {
                    return false;
                }

                if (attempt.IsCompletedSuccessfully)
                {
                    return true;
                }

                attempt = null; // refused while the idle sockets still counted: try again
                return false;
            });
            Assert.Equal(1, relay.Server.ConnectionCount);
        }
        finally
        {
            foreach (var socket in idle)
            {
                socket.Dispose();
            }
        }
    }

    private static async Task<int> ReadOnceAsync(TcpClient client)
    {
        try
        {
            return await client.GetStream().ReadAsync(new byte[1]);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>A socket the relay closes before any byte: the connect itself may already see the reset.</summary>
    private static async Task ExpectRefusedAsync(RelayTestKit.RunningRelay relay)
    {
        TcpClient socket;
        try
        {
            socket = await RelayTestKit.ConnectTcpClientAsync(relay.Server.HopEndPoint!);
        }
        catch (SocketException)
        {
            return;
        }

        using (socket)
        {
            await ExpectClosedAsync(socket);
        }
    }

    private static async Task ExpectClosedAsync(TcpClient client)
    {
        var buffer = new byte[4096];
        try
        {
            while (await client.GetStream().ReadAsync(buffer).AsTask().WaitAsync(RelayTestKit.Guard) > 0)
            {
            }
        }
        catch (IOException)
        {
            // Reset rather than closed: closed all the same.
        }
    }

    private static async Task<(RelayTestKit.Agent Bob, RelayLink Link)> ListenerAsync(RelayTestKit kit, RelayTestKit.RunningRelay relay)
    {
        var bob = await kit.CreateAgentAsync(["role=agent"]);
        return (bob, await kit.ConnectAsync(bob, relay));
    }

    private static async Task StillServesAsync(RelayTestKit kit, RelayTestKit.RunningRelay relay, RelayTestKit.Agent bob, RelayLink linkB)
    {
        var alice = await kit.CreateAgentAsync(["role=agent"]);
        var linkA = await kit.ConnectAsync(alice, relay);
        var (a, b) = await kit.EndToEndAsync(alice, linkA, bob, linkB, bob.Identity.Identifier.ToString());
        await using (a)
        await using (b)
        {
            await a.SendAsync("still here"u8.ToArray());
            using var received = await b.ReceiveAsync().AsTask().WaitAsync(RelayTestKit.Guard);
            Assert.Equal("still here"u8.ToArray(), received!.Payload.ToArray());
        }
    }
}
