using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Tests.Channel;

namespace SecureChannels.Protocol.Tests.Circuits;

public sealed class RelayLinkTests
{
    [Fact]
    public async Task HelloCarriesTheOptionsAndWelcomeIsExposed()
    {
        var (kit, _, relayAgent, agentHop, relay) = await RelayLinkHarness.OpenHopAsync();
        await using (kit)
        {
            var connect = RelayLink.ConnectAsync(agentHop, new RelayLinkOptions { Names = ["service-a"], TimeProvider = kit.Time });
            var hello = RelayFrames.DecodeHello(await relay.ReceiveAsync(RelayFrameType.Hello));
            Assert.True(hello.Listen);
            Assert.Equal(["service-a"], hello.Names);
            Assert.Null(hello.Relay);

            // PINGs before WELCOME are answered.
            await relay.SendAsync(RelayFrames.Ping(RelayFrameType.Ping, 42));
            Assert.Equal(42UL, RelayFrames.DecodePing(await relay.ReceiveAsync(RelayFrameType.Pong)));
            await relay.SendAsync(RelayFrames.Welcome(RelayLinkHarness.DefaultWelcome));
            await using var link = await connect.WaitAsync(ChannelTestKit.Guard);
            Assert.Equal("relay-one", link.Welcome.Relay);
            Assert.Equal(["service-a"], link.Welcome.Addresses);
            Assert.Equal(relayAgent.Identity.Identifier, link.Relay.Identifier);

            await link.DisposeAsync();
            Assert.Equal(new ReasonFrame(RelayErrorCode.Normal, "closing"), RelayFrames.DecodeGoAway(await relay.ReceiveAsync(RelayFrameType.GoAway)));
            Assert.Equal(RelayErrorCode.Normal, (await link.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
            await relay.Hop.DisposeAsync();
        }
    }

    [Fact]
    public async Task GoAwayInsteadOfWelcomeFailsTheConnect()
    {
        var (kit, _, _, agentHop, relay) = await RelayLinkHarness.OpenHopAsync();
        await using (kit)
        await using (relay.Hop)
        {
            var connect = RelayLink.ConnectAsync(agentHop, new RelayLinkOptions { Names = ["not-mine"], TimeProvider = kit.Time });
            await relay.ReceiveAsync(RelayFrameType.Hello);
            await relay.SendAsync(RelayFrames.GoAway(RelayErrorCode.NameNotGranted, "not-mine is not granted"));
            var error = await Assert.ThrowsAsync<RelayException>(() => connect.WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(RelayErrorCode.NameNotGranted, error.Code);
            Assert.True(error.FromPeer);
            Assert.Contains("not-mine is not granted", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AnyOtherFrameBeforeWelcomeIsAViolation()
    {
        var (kit, _, _, agentHop, relay) = await RelayLinkHarness.OpenHopAsync();
        await using (kit)
        await using (relay.Hop)
        {
            var connect = RelayLink.ConnectAsync(agentHop, new RelayLinkOptions { TimeProvider = kit.Time });
            await relay.ReceiveAsync(RelayFrameType.Hello);
            await relay.SendAsync(RelayFrames.Close(1));
            var error = await Assert.ThrowsAsync<RelayException>(() => connect.WaitAsync(ChannelTestKit.Guard));
            Assert.Equal(RelayErrorCode.ProtocolViolation, error.Code);
            Assert.Equal(RelayErrorCode.ProtocolViolation, RelayFrames.DecodeGoAway(await relay.ReceiveAsync(RelayFrameType.GoAway)).Code);
        }
    }

    [Fact]
    public async Task NoWelcomeTimesOut()
    {
        var (kit, _, _, agentHop, relay) = await RelayLinkHarness.OpenHopAsync();
        await using (kit)
        await using (relay.Hop)
        {
            var connect = RelayLink.ConnectAsync(agentHop, new RelayLinkOptions { TimeProvider = kit.Time, WelcomeTimeout = TimeSpan.FromSeconds(5) });
            await relay.ReceiveAsync(RelayFrameType.Hello);
            await kit.AdvanceUntilAsync(connect, TimeSpan.FromSeconds(1), 10);
            await Assert.ThrowsAsync<TimeoutException>(() => connect);
        }
    }

    [Fact]
    public async Task OptionsAreChecked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RelayLinkOptions { CircuitWindow = 1023 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new RelayLinkOptions { MaxPendingIncoming = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new RelayLinkOptions { WelcomeTimeout = TimeSpan.Zero });
        Assert.Throws<ArgumentException>(() => new RelayLinkOptions { Names = ["Bad"] });

        var (kit, _, _, agentHop, relay) = await RelayLinkHarness.OpenHopAsync();
        await using (kit)
        await using (relay.Hop)
        {
            await Assert.ThrowsAsync<ArgumentException>(() => RelayLink.ConnectAsync(agentHop, new RelayLinkOptions { Listen = false, Names = ["a"] }));
        }
    }

    [Fact]
    public async Task OpenAcceptDataBothWaysAndClose()
    {
        await using var h = await RelayLinkHarness.CreateAsync(t => new RelayLinkOptions { TimeProvider = t, CircuitWindow = 4096 });
        Assert.Throws<FormatException>(() => h.Link.OpenCircuitAsync("Not An Address").GetAwaiter().GetResult());

        var opening = h.Link.OpenCircuitAsync("service-b@relay-two");
        var openFrame = await h.Relay.ReceiveAsync(RelayFrameType.Open);
        Assert.Equal(1u, RelayFrames.ReadCircuit(openFrame));
        var open = RelayFrames.DecodeOpen(openFrame);
        Assert.Equal(("service-b@relay-two", 4096u, (string?)null, (string?)null), (open.Address, open.Window, open.Opener, open.Principal));
        Assert.Empty(open.Via);
        await h.Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Accept, 1, 65536));
        await using var circuit = await opening.WaitAsync(ChannelTestKit.Guard);
        Assert.Equal((1u, "service-b@relay-two"), (circuit.Id, circuit.Address));

        await circuit.Output.WriteAllAsync("hello"u8.ToArray());
        var data = await h.Relay.ReceiveAsync(RelayFrameType.Data);
        Assert.Equal(1u, RelayFrames.ReadCircuit(data));
        Assert.Equal("hello"u8.ToArray(), data.Body());

        await h.Relay.SendAsync(RelaySide.Data(1, "world"u8));
        Assert.Equal("world"u8.ToArray(), await RelayLinkHarness.ReadExactlyAsync(circuit.Input, 5));

        await circuit.Output.CompleteAsync();
        await h.Relay.ReceiveAsync(RelayFrameType.Close);
        Assert.False(circuit.Completion.IsCompleted);
        await h.Relay.SendAsync(RelayFrames.Close(1));
        var end = await circuit.Input.ReadAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        Assert.True(end.IsCompleted);
        Assert.Equal(RelayErrorCode.Normal, (await circuit.Completion.WaitAsync(ChannelTestKit.Guard)).Code);

        // The next id is the next odd one.
        var next = h.Link.OpenCircuitAsync("service-b");
        Assert.Equal(3u, RelayFrames.ReadCircuit(await h.Relay.ReceiveAsync(RelayFrameType.Open)));
        await h.Relay.SendAsync(RelayFrames.CircuitReason(RelayFrameType.Refuse, 3, RelayErrorCode.Unreachable, "nobody"));
        await Assert.ThrowsAsync<RelayException>(() => next.WaitAsync(ChannelTestKit.Guard));
    }

    [Fact]
    public async Task TheWindowIsClampedToTheRelaysMaximum()
    {
        await using var h = await RelayLinkHarness.CreateAsync(welcome: RelayLinkHarness.DefaultWelcome with { MaxWindow = 2000 });
        _ = h.Link.OpenCircuitAsync("service-b");
        Assert.Equal(2000u, RelayFrames.DecodeOpen(await h.Relay.ReceiveAsync(RelayFrameType.Open)).Window);
    }

    [Fact]
    public async Task RefuseFailsTheOpenWithThePeersCode()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        var opening = h.Link.OpenCircuitAsync("service-b");
        var id = RelayFrames.ReadCircuit(await h.Relay.ReceiveAsync(RelayFrameType.Open));
        await h.Relay.SendAsync(RelayFrames.CircuitReason(RelayFrameType.Refuse, id, RelayErrorCode.Refused, "go away"));
        var error = await Assert.ThrowsAsync<RelayException>(() => opening.WaitAsync(ChannelTestKit.Guard));
        Assert.Equal((RelayErrorCode.Refused, true), (error.Code, error.FromPeer));
    }

    [Fact]
    public async Task CancellingAnOpenResetsIt()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        using var cancel = new CancellationTokenSource();
        var opening = h.Link.OpenCircuitAsync("service-b", cancel.Token);
        var id = RelayFrames.ReadCircuit(await h.Relay.ReceiveAsync(RelayFrameType.Open));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => opening.WaitAsync(ChannelTestKit.Guard));
        var reset = await h.Relay.ReceiveAsync(RelayFrameType.Reset);
        Assert.Equal(id, RelayFrames.ReadCircuit(reset));
        Assert.Equal(RelayErrorCode.Normal, RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset).Code);

        // A late ACCEPT for it is ignored, and the link goes on.
        await h.Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Accept, id, 100));
        await h.Relay.SendAsync(RelayFrames.Ping(RelayFrameType.Ping, 7));
        await h.Relay.ReceiveAsync(RelayFrameType.Pong);
        Assert.False(h.Link.Completion.IsCompleted);
    }

    [Fact]
    public async Task IncomingCircuitsAreAcceptedWithTheirOpener()
    {
        await using var h = await RelayLinkHarness.CreateAsync(t => new RelayLinkOptions { TimeProvider = t, CircuitWindow = 8192 });
        var opener = h.RelayAgent.Identity.Identifier.ToString();
        await h.Relay.SendAsync(RelayFrames.Open(2, new OpenFrame("service-a", 3000, opener, "user:bob", ["relay-two"])));
        var incoming = await h.Link.AcceptCircuitAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        Assert.Equal((2u, "service-a", opener, "user:bob"), (incoming.Id, incoming.Address, incoming.Opener, incoming.Principal));
        Assert.Equal(["relay-two"], incoming.Via);

        await using var circuit = await incoming.AcceptAsync().WaitAsync(ChannelTestKit.Guard);
        var accept = await h.Relay.ReceiveAsync(RelayFrameType.Accept);
        Assert.Equal((2u, 8192u), (RelayFrames.ReadCircuit(accept), RelayFrames.DecodeWindow(accept)));
        Assert.Equal((opener, "user:bob"), (circuit.Opener, circuit.Principal));
        await Assert.ThrowsAsync<InvalidOperationException>(() => incoming.AcceptAsync());

        await h.Relay.SendAsync(RelaySide.Data(2, "ping"u8));
        Assert.Equal("ping"u8.ToArray(), await RelayLinkHarness.ReadExactlyAsync(circuit.Input, 4));
        await circuit.Output.WriteAllAsync("pong"u8.ToArray());
        Assert.Equal("pong"u8.ToArray(), (await h.Relay.ReceiveAsync(RelayFrameType.Data)).Body());
    }

    [Fact]
    public async Task IncomingCircuitsCanBeRefusedAndTheQueueIsBounded()
    {
        await using var h = await RelayLinkHarness.CreateAsync(t => new RelayLinkOptions { TimeProvider = t, MaxPendingIncoming = 1 });
        await h.Relay.SendAsync(RelayFrames.Open(2, new OpenFrame("service-a", 3000, null, null, [])));
        await h.Relay.SendAsync(RelayFrames.Open(4, new OpenFrame("service-a", 3000, null, null, [])));
        var overflow = await h.Relay.ReceiveAsync(RelayFrameType.Refuse);
        Assert.Equal(4u, RelayFrames.ReadCircuit(overflow));
        Assert.Equal(RelayErrorCode.LimitExceeded, RelayFrames.DecodeCircuitReason(overflow, RelayFrameType.Refuse).Code);

        var incoming = await h.Link.AcceptCircuitAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        await incoming.RefuseAsync(RelayErrorCode.Refused, "not now");
        var refuse = await h.Relay.ReceiveAsync(RelayFrameType.Refuse);
        Assert.Equal(2u, RelayFrames.ReadCircuit(refuse));
        Assert.Equal(new ReasonFrame(RelayErrorCode.Refused, "not now"), RelayFrames.DecodeCircuitReason(refuse, RelayFrameType.Refuse));

        // An OPEN the relay resets before the agent answers (its open timeout) cannot be accepted.
        await h.Relay.SendAsync(RelayFrames.Open(6, new OpenFrame("service-a", 3000, null, null, [])));
        var late = await h.Link.AcceptCircuitAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
        await h.Relay.SendAsync(RelayFrames.CircuitReason(RelayFrameType.Reset, 6, RelayErrorCode.OpenTimeout, "too slow"));
        await h.Relay.SendAsync(RelayFrames.Ping(RelayFrameType.Ping, 1));
        await h.Relay.ReceiveAsync(RelayFrameType.Pong);
        var error = await Assert.ThrowsAsync<RelayException>(() => late.AcceptAsync());
        Assert.Equal(RelayErrorCode.OpenTimeout, error.Code);
    }

    [Fact]
    public async Task TheSenderStopsAtTheWindowAndResumesOnCredit()
    {
        await using var h = await RelayLinkHarness.CreateAsync(welcome: RelayLinkHarness.DefaultWelcome with { MaxData = 400 });
        await using var circuit = await h.OpenAcceptedAsync(peerWindow: 1000);
        var payload = ChannelTestKit.Pattern(3000, 1);
        var writing = circuit.Output.WriteAsync(payload).AsTask();

        var received = new List<byte>();
        long allowed = 1000;
        async Task ReceiveUpToAsync(long total)
        {
            while (received.Count < total)
            {
                var body = (await h.Relay.ReceiveAsync(RelayFrameType.Data)).Body();
                Assert.InRange(body.Length, 1, 400);
                received.AddRange(body);
                Assert.True(received.Count <= allowed, $"{received.Count} bytes sent with {allowed} allowed.");
            }
        }

        await ReceiveUpToAsync(1000);
        allowed += 500;
        await h.Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Credit, circuit.Id, 500));
        await ReceiveUpToAsync(1500);
        allowed += 1000;
        await h.Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Credit, circuit.Id, 1000));
        await ReceiveUpToAsync(2500);
        allowed += 500;
        await h.Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Credit, circuit.Id, 500));
        await ReceiveUpToAsync(3000);
        await writing.WaitAsync(ChannelTestKit.Guard);
        Assert.Equal(payload, received.ToArray());

        // All credit is used; 1001 more would be more than the receiver's window outstanding.
        await h.Relay.SendAsync(RelayFrames.WindowFrame(RelayFrameType.Credit, circuit.Id, 1001));
        var reset = await h.Relay.ReceiveAsync(RelayFrameType.Reset);
        Assert.Equal(RelayErrorCode.FlowControlViolation, RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset).Code);
    }

    [Fact]
    public async Task TheReceiverGrantsCreditAfterConsumingHalfItsWindow()
    {
        await using var h = await RelayLinkHarness.CreateAsync(t => new RelayLinkOptions { TimeProvider = t, CircuitWindow = 1024 });
        await using var circuit = await h.OpenAcceptedAsync();
        await h.Relay.SendAsync(RelaySide.Data(circuit.Id, new byte[400]));
        await RelayLinkHarness.ReadExactlyAsync(circuit.Input, 400);
        await h.Relay.SendAsync(RelaySide.Data(circuit.Id, new byte[200]));
        await RelayLinkHarness.ReadExactlyAsync(circuit.Input, 200);

        // No CREDIT after 400 bytes (below half the window); one of 600 after 600.
        var credit = await h.Relay.ReceiveAsync(RelayFrameType.Credit);
        Assert.Equal((circuit.Id, 600u), (RelayFrames.ReadCircuit(credit), RelayFrames.DecodeWindow(credit)));

        // The full window (424 left + 600 granted) may now be in flight, and nothing more.
        await h.Relay.SendAsync(RelaySide.Data(circuit.Id, new byte[1024]));
        await RelayLinkHarness.ReadExactlyAsync(circuit.Input, 1024);
        credit = await h.Relay.ReceiveAsync(RelayFrameType.Credit);
        Assert.Equal(1024u, RelayFrames.DecodeWindow(credit));
    }

    [Fact]
    public async Task DataBeyondCreditResetsTheCircuit()
    {
        await using var h = await RelayLinkHarness.CreateAsync(t => new RelayLinkOptions { TimeProvider = t, CircuitWindow = 1024 });
        await using var circuit = await h.OpenAcceptedAsync();
        await h.Relay.SendAsync(RelaySide.Data(circuit.Id, new byte[1024]));
        await h.Relay.SendAsync(RelaySide.Data(circuit.Id, new byte[1]));
        var reset = await h.Relay.ReceiveAsync(RelayFrameType.Reset);
        Assert.Equal(RelayErrorCode.FlowControlViolation, RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset).Code);
        Assert.Equal(RelayErrorCode.FlowControlViolation, (await circuit.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        var error = await Assert.ThrowsAsync<RelayException>(() => circuit.Input.ReadAsync().AsTask());
        Assert.Equal(RelayErrorCode.FlowControlViolation, error.Code);
        Assert.False(h.Link.Completion.IsCompleted);
    }

    [Fact]
    public async Task APeerResetReachesTheReaderAsRelayException()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        await using var circuit = await h.OpenAcceptedAsync();
        var reading = circuit.Input.ReadAsync().AsTask();
        await h.Relay.SendAsync(RelayFrames.CircuitReason(RelayFrameType.Reset, circuit.Id, RelayErrorCode.PeerGone, "their hop ended"));
        var error = await Assert.ThrowsAsync<RelayException>(() => reading.WaitAsync(ChannelTestKit.Guard));
        Assert.Equal((RelayErrorCode.PeerGone, true), (error.Code, error.FromPeer));
        Assert.Equal(new ReasonFrame(RelayErrorCode.PeerGone, "their hop ended"), await circuit.Completion.WaitAsync(ChannelTestKit.Guard));

        // Writes after the reset go nowhere; the writer learns the circuit is gone (once the sender has stopped).
        async Task<bool> WriteAsync() => (await circuit.Output.WriteAsync(new byte[10])).IsCompleted;
        while (!await WriteAsync().WaitAsync(ChannelTestKit.Guard))
        {
            await Task.Yield();
        }
    }

    [Fact]
    public async Task AFailedSenderResetsWithInternalError()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        await using var circuit = await h.OpenAcceptedAsync();
        await circuit.Output.CompleteAsync(new InvalidOperationException("application bug"));
        var reset = await h.Relay.ReceiveAsync(RelayFrameType.Reset);
        var reason = RelayFrames.DecodeCircuitReason(reset, RelayFrameType.Reset);
        Assert.Equal(RelayErrorCode.InternalError, reason.Code);
        Assert.DoesNotContain("application bug", reason.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HopDeathFailsCircuitsWithPeerGone()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        await using var circuit = await h.OpenAcceptedAsync();
        var pending = h.Link.OpenCircuitAsync("service-c");
        await h.Relay.ReceiveAsync(RelayFrameType.Open);
        var ping = h.Link.PingAsync().AsTask();
        await h.Relay.ReceiveAsync(RelayFrameType.Ping);
        var accepting = h.Link.AcceptCircuitAsync().AsTask();

        await h.Relay.Hop.DisposeAsync();

        var error = await Assert.ThrowsAsync<RelayException>(() => circuit.Input.ReadAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
        Assert.Equal(RelayErrorCode.PeerGone, error.Code);
        Assert.Equal(RelayErrorCode.PeerGone, (await circuit.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        Assert.Equal(RelayErrorCode.PeerGone, (await Assert.ThrowsAsync<RelayException>(() => pending.WaitAsync(ChannelTestKit.Guard))).Code);
        Assert.Equal(RelayErrorCode.PeerGone, (await Assert.ThrowsAsync<RelayException>(() => ping.WaitAsync(ChannelTestKit.Guard))).Code);
        Assert.Equal(RelayErrorCode.PeerGone, (await Assert.ThrowsAsync<RelayException>(() => accepting.WaitAsync(ChannelTestKit.Guard))).Code);
        var end = await h.Link.Completion.WaitAsync(ChannelTestKit.Guard);
        Assert.True(end.Code is RelayErrorCode.PeerGone or RelayErrorCode.Normal, end.ToString());
        await Assert.ThrowsAsync<RelayException>(() => h.Link.OpenCircuitAsync("service-c"));
    }

    [Fact]
    public async Task GoAwayEndsTheLinkWithItsCode()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        await using var circuit = await h.OpenAcceptedAsync();
        await h.Relay.SendAsync(RelayFrames.GoAway(RelayErrorCode.Superseded, "a newer hop"));
        Assert.Equal(new ReasonFrame(RelayErrorCode.Superseded, "a newer hop"), await h.Link.Completion.WaitAsync(ChannelTestKit.Guard));
        var end = await circuit.Completion.WaitAsync(ChannelTestKit.Guard);
        Assert.Equal(RelayErrorCode.Superseded, end.Code);
        var error = await Assert.ThrowsAsync<RelayException>(() => circuit.Input.ReadAsync().AsTask());
        Assert.Equal((RelayErrorCode.Superseded, true), (error.Code, error.FromPeer));
    }

    [Theory]
    [InlineData("second WELCOME")]
    [InlineData("DATA before ACCEPT")]
    [InlineData("OPEN with odd id")]
    [InlineData("OPEN reusing an id")]
    [InlineData("empty DATA")]
    [InlineData("malformed OPEN")]
    public async Task ProtocolViolationsEndTheLinkWithGoAway(string violation)
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        var opening = h.Link.OpenCircuitAsync("service-b");
        var id = RelayFrames.ReadCircuit(await h.Relay.ReceiveAsync(RelayFrameType.Open));
        var open = RelayFrames.Open(2, new OpenFrame("service-a", 100, null, null, []));
        byte[][] frames = violation switch
        {
            "second WELCOME" => [RelayFrames.Welcome(RelayLinkHarness.DefaultWelcome)],
            "DATA before ACCEPT" => [RelaySide.Data(id, [1])],
            "OPEN with odd id" => [RelayFrames.Open(5, new OpenFrame("service-a", 100, null, null, []))],
            "OPEN reusing an id" => [open, open],
            "empty DATA" => [RelayFrames.WindowFrame(RelayFrameType.Accept, id, 100), RelaySide.Data(id, [])],
            _ => [open[..^1]],
        };
        foreach (var frame in frames)
        {
            await h.Relay.SendAsync(frame);
        }

        byte[] goAway;
        do
        {
            goAway = await h.Relay.ReceiveAsync();
        }
        while ((RelayFrameType)goAway[0] != RelayFrameType.GoAway);
        Assert.Equal(RelayErrorCode.ProtocolViolation, RelayFrames.DecodeGoAway(goAway).Code);
        Assert.Equal(RelayErrorCode.ProtocolViolation, (await h.Link.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        await Task.WhenAny(opening).WaitAsync(ChannelTestKit.Guard);
        if (opening.IsCompletedSuccessfully)
        {
            Assert.Equal(RelayErrorCode.ProtocolViolation, (await (await opening).Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        }
        else
        {
            Assert.Equal(RelayErrorCode.ProtocolViolation, (await Assert.ThrowsAsync<RelayException>(() => opening)).Code);
        }
    }

    [Fact]
    public async Task PingMeasuresTheRoundTripAndRelayPingsAreAnswered()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        var ping = h.Link.PingAsync().AsTask();
        var nonce = RelayFrames.DecodePing(await h.Relay.ReceiveAsync(RelayFrameType.Ping));
        h.Kit.Time.Advance(TimeSpan.FromMilliseconds(25));
        await h.Relay.SendAsync(RelayFrames.Ping(RelayFrameType.Pong, nonce ^ 1)); // not ours: ignored
        await h.Relay.SendAsync(RelayFrames.Ping(RelayFrameType.Pong, nonce));
        Assert.Equal(TimeSpan.FromMilliseconds(25), await ping.WaitAsync(ChannelTestKit.Guard));

        await h.Relay.SendAsync(RelayFrames.Ping(RelayFrameType.Ping, 0xfeed));
        Assert.Equal(0xfeedUL, RelayFrames.DecodePing(await h.Relay.ReceiveAsync(RelayFrameType.Pong)));
    }

    [Fact]
    public async Task DisposingTheLinkResetsCircuitsLocally()
    {
        await using var h = await RelayLinkHarness.CreateAsync();
        var circuit = await h.OpenAcceptedAsync();
        var reading = circuit.Input.ReadAsync().AsTask();
        await h.Link.DisposeAsync();
        Assert.Equal(RelayErrorCode.Normal, RelayFrames.DecodeGoAway(await h.Relay.ReceiveAsync(RelayFrameType.GoAway)).Code);
        Assert.Equal(RelayErrorCode.Normal, (await circuit.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        await Assert.ThrowsAsync<RelayException>(() => reading.WaitAsync(ChannelTestKit.Guard));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => h.Link.OpenCircuitAsync("service-b"));
        await circuit.DisposeAsync();
    }

    [Fact]
    public async Task AnEndToEndChannelRunsOverTwoCircuitsThroughAForwarder()
    {
        await using var kit = await ChannelTestKit.CreateAsync();
        var alice = await kit.CreateAgentAsync(["role=a"]);
        var bob = await kit.CreateAgentAsync(["role=b"]);
        var relay = await kit.CreateAgentAsync();
        var (aliceHop, relayToAlice) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(relay));
        var (bobHop, relayToBob) = await ChannelTestKit.OpenAsync(kit.Options(bob), kit.Options(relay));
        var forwarder = new TinyForwarder(relayToAlice, relayToBob);
        var aliceLink = await RelayLink.ConnectAsync(aliceHop, new RelayLinkOptions { Listen = false, TimeProvider = kit.Time }).WaitAsync(ChannelTestKit.Guard);
        // Bob's window is below the default but above one secure-channel record (2 + 65,535 bytes), which the
        // receiving channel needs whole before it consumes anything.
        var bobLink = await RelayLink.ConnectAsync(bobHop, new RelayLinkOptions { TimeProvider = kit.Time, CircuitWindow = 96 * 1024 }).WaitAsync(ChannelTestKit.Guard);
        await using (aliceLink)
        await using (bobLink)
        {
            var opening = aliceLink.OpenCircuitAsync(bob.Identity.Identifier.ToString());
            var incoming = await bobLink.AcceptCircuitAsync().AsTask().WaitAsync(ChannelTestKit.Guard);
            Assert.Equal(alice.Identity.Identifier.ToString(), incoming.Opener);
            await using var bobCircuit = await incoming.AcceptAsync().WaitAsync(ChannelTestKit.Guard);
            await using var aliceCircuit = await opening.WaitAsync(ChannelTestKit.Guard);

            var (a, b) = await ChannelTestKit.OpenAsync(kit.Options(alice), kit.Options(bob), (aliceCircuit, bobCircuit));
            await using (a)
            await using (b)
            {
                Assert.Equal(bob.Identity.Identifier, a.Peer.Identifier);
                var big = ChannelTestKit.Pattern(1024 * 1024, 3);
                var sending = a.SendAsync(big).AsTask();
                using (var message = await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
                {
                    Assert.Equal(big, message!.Payload.ToArray());
                }

                await sending.WaitAsync(ChannelTestKit.Guard);
                await b.SendAsync("thanks"u8.ToArray());
                using (var reply = await a.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard))
                {
                    Assert.Equal("thanks"u8.ToArray(), reply!.Payload.ToArray());
                }

                var closing = a.CloseAsync();
                Assert.Null(await b.ReceiveAsync().AsTask().WaitAsync(ChannelTestKit.Guard));
                await closing.WaitAsync(ChannelTestKit.Guard);
            }
        }

        await relayToAlice.DisposeAsync();
        await relayToBob.DisposeAsync();
        await forwarder.Loops.WaitAsync(ChannelTestKit.Guard);
    }

    [Fact]
    public async Task A_hop_whose_connection_fails_under_a_send_ends_the_circuit_with_a_relay_error_not_an_IOException()
    {
        // Found by the soak (bench soak): a relay killed under a circuit's send made the hop's flush throw the socket's
        // IOException, which escaped the circuit's pump, so Circuit.Sent faulted and AgentChannel.DisposeAsync threw it.
        var transport = default(BreakingTransport);
        await using var harness = await RelayLinkHarness.CreateAsync(agentTransport: pipe => transport = new BreakingTransport(pipe));
        var circuit = await harness.OpenAcceptedAsync();
        transport!.Break();

        await circuit.Output.WriteAsync("after the connection failed"u8.ToArray());
        await circuit.Sent.WaitAsync(ChannelTestKit.Guard);
        Assert.Equal(RelayErrorCode.PeerGone, (await circuit.Completion.WaitAsync(ChannelTestKit.Guard)).Code);
        await circuit.DisposeAsync();
    }

    /// <summary>A transport whose writes fail, once broken, as a socket pipe's do after its connection failed: the flush throws the IOException.</summary>
    private sealed class BreakingTransport(IDuplexPipe inner) : IDuplexPipe
    {
        private readonly BreakingWriter _output = new(inner.Output);

        public PipeReader Input => inner.Input;

        public PipeWriter Output => _output;

        public void Break() => _output.Broken = true;

        private sealed class BreakingWriter(PipeWriter inner) : PipeWriter
        {
            public volatile bool Broken;

            public override void Advance(int bytes) => inner.Advance(bytes);

            public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

            public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

            public override void CancelPendingFlush() => inner.CancelPendingFlush();

            public override void Complete(Exception? exception = null) => inner.Complete(exception);

            public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
                Broken ? ValueTask.FromException<FlushResult>(new IOException("The connection failed: Shutdown.")) : inner.FlushAsync(cancellationToken);
        }
    }
}
