using System.IO.Pipelines;
using SecureChannels.Protocol.Channel;

namespace SecureChannels.Client.Tests;

public sealed class AgentClientTests
{
    private const string Credentialed = "peer.chain_length >= 1";

    [Fact]
    public async Task Two_agents_meet_through_the_relay_by_identifier_and_by_name_and_see_each_other_verified()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var bob = await kit.StartAgentAsync(relay, "user:bob", ["role=billing", "relay-name=billing"], Credentialed, names: ["billing"]);
        var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], "subject.role == \"billing\"");

        foreach (var address in new[] { bob.Identifier.ToString(), "billing", "billing@edge" })
        {
            var opening = alice.OpenChannelAsync(address);
            await using var accepted = await bob.AcceptChannelAsync().WaitAsync(ClientTestKit.Guard);
            await using var opened = await opening.WaitAsync(ClientTestKit.Guard);

            Assert.Equal(bob.Identifier, opened.Peer.Identifier);
            Assert.Equal("user:bob", opened.Peer.Principal.ToString());
            Assert.Equal(alice.Identifier, accepted.Peer.Identifier);
            Assert.Equal("user:alice", accepted.Peer.Principal.ToString());
            Assert.Equal(["orchestrator"], accepted.Peer.Attributes.Entries["role"]);
            await ClientTestKit.AssertCarriesAsync(opened, accepted);
            await ClientTestKit.AssertCarriesAsync(accepted, opened);
        }
    }

    [Fact]
    public async Task A_peer_the_policy_refuses_is_denied_and_the_acceptor_moves_on_to_the_next()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var bob = await kit.StartAgentAsync(relay, "user:bob", ["role=billing"], "subject.role == \"orchestrator\"");
        var mallory = await kit.StartAgentAsync(relay, "user:mallory", ["role=intern"], Credentialed);
        var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);

        var accepting = bob.AcceptChannelAsync();
        var denied = await Assert.ThrowsAsync<SecureChannelException>(() => mallory.OpenChannelAsync(bob.Identifier.ToString()).WaitAsync(ClientTestKit.Guard));
        Assert.Equal(ChannelErrorCode.AccessDenied, denied.Code);
        Assert.False(accepting.IsCompleted, accepting.IsFaulted ? accepting.Exception!.ToString() : accepting.Status.ToString());

        await using var opened = await alice.OpenChannelAsync(bob.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
        await using var accepted = await accepting.WaitAsync(ClientTestKit.Guard);
        Assert.Equal(alice.Identifier, accepted.Peer.Identifier);
    }

    [Fact]
    public async Task After_the_relay_restarts_agents_reconnect_and_register_again_and_the_old_channel_ended_with_its_reason()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var bob = await kit.StartAgentAsync(relay, "user:bob", ["role=billing"], Credentialed);
        var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
        var opening = alice.OpenChannelAsync(bob.Identifier.ToString());
        var before = await bob.AcceptChannelAsync().WaitAsync(ClientTestKit.Guard);
        var beforeOpened = await opening.WaitAsync(ClientTestKit.Guard);

        await kit.StopRelayAsync();
        var ended = await beforeOpened.Completion.WaitAsync(ClientTestKit.Guard);
        Assert.NotEqual(ChannelErrorCode.Normal, ended.Code);
        await kit.StartRelayAsync(relay.EndPoint.Port);

        // Reconnection waits out a jittered back-off on the fake clock: at most the 30 s cap.
        for (var second = 0; alice.HopsEstablished < 2 || bob.HopsEstablished < 2; second++)
        {
            Assert.True(second < 120, "The agents did not reconnect.");
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
        }

        var reopening = alice.OpenChannelAsync(bob.Identifier.ToString());
        await using var after = await bob.AcceptChannelAsync().WaitAsync(ClientTestKit.Guard);
        await using var afterOpened = await reopening.WaitAsync(ClientTestKit.Guard);
        await ClientTestKit.AssertCarriesAsync(afterOpened, after);
        await before.DisposeAsync();
        await beforeOpened.DisposeAsync();
    }

    [Fact]
    public async Task New_credentials_reach_every_open_channel_without_a_new_handshake()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var bob = await kit.StartAgentAsync(relay, "user:bob", ["role=billing"], Credentialed);
        var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
        var opening = alice.OpenChannelAsync(bob.Identifier.ToString());
        await using var accepted = await bob.AcceptChannelAsync().WaitAsync(ClientTestKit.Guard);
        await using var opened = await opening.WaitAsync(ClientTestKit.Guard);
        var first = accepted.Peer.NotAfter;

        kit.Time.Advance(TimeSpan.FromSeconds(40)); // within the channels' idle timeout (60 s)
        await alice.UpdateCredentialsAsync([await kit.IssueAsync(alice.Options.Identity, "user:alice", "role=orchestrator")]);
        await ClientTestKit.AssertCarriesAsync(opened, accepted);

        Assert.Equal(first + TimeSpan.FromSeconds(40), accepted.Peer.NotAfter);
        Assert.Single(alice.Credentials);

        // Someone else's credential is refused before anything changes: the channels and later handshakes keep the set.
        var before = alice.Credentials;
        var foreign = await kit.IssueAsync(bob.Options.Identity, "user:alice", "role=orchestrator");
        await Assert.ThrowsAsync<ArgumentException>(() => alice.UpdateCredentialsAsync([foreign]));
        Assert.Same(before, alice.Credentials);
        await ClientTestKit.AssertCarriesAsync(opened, accepted);
    }

    [Fact]
    public async Task Disposing_an_agent_whose_hop_waits_for_the_relays_accept_does_not_throw()
    {
        // Found by the soak (bench soak): an agent killed while its hop handshake waited for the relay's ACCEPT threw
        // SecureChannelException (HandshakeTimeout) from DisposeAsync, which the cancelled handshake reports instead
        // of OperationCanceledException.
        await using var kit = await ClientTestKit.CreateAsync();
        var relayIdentity = await kit.CreateIdentityAsync();
        using var relayKey = Protocol.Noise.Crypto.Curve25519Dh.Instance.GenerateKeyPair();
        var attestation = await relayIdentity.AttestChannelKeyAsync(relayKey.PublicKey.ToArray(), TimeSpan.FromDays(1), kit.Time);
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var handshaken = new TaskCompletionSource<SecureChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        var serving = Task.Run(async () =>
        {
            // A "relay" that completes the Noise handshake but whose ACCEPT record never leaves: the agent waits for it.
            var socket = await listener.AcceptSocketAsync();
            var transport = new FirstFlushOnly(new Protocol.Wire.SocketPipe(socket));
            handshaken.SetResult(await SecureChannel.AcceptAsync(transport, new SecureChannelOptions
            {
                Identity = relayIdentity,
                ChannelKey = relayKey,
                Attestation = attestation,
                Verifier = new Protocol.Credentials.CredentialVerifier(kit.Anchors, new Protocol.Credentials.RevocationRegistry(), kit.Time),
                Policy = Protocol.Policy.AccessPolicy.Parse("true"),
                TimeProvider = kit.Time,
            }));
        });
        var identity = await kit.CreateIdentityAsync();
        var agent = new AgentClient(new AgentClientOptions
        {
            Identity = identity,
            Anchors = kit.Anchors,
            Credentials = [await kit.IssueAsync(identity, "user:alice", "role=worker")],
            Relays = [new RelayEndpoint((System.Net.IPEndPoint)listener.LocalEndpoint, relayIdentity.Identifier)],
            TimeProvider = kit.Time,
        });
        var starting = agent.StartAsync();
        await using var relaySide = await handshaken.Task.WaitAsync(ClientTestKit.Guard);

        await agent.DisposeAsync().AsTask().WaitAsync(ClientTestKit.Guard);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => starting.WaitAsync(ClientTestKit.Guard));
        await serving.WaitAsync(ClientTestKit.Guard);
    }

    /// <summary>A transport whose output carries the first flush and drops everything written after it.</summary>
    private sealed class FirstFlushOnly(IDuplexPipe inner) : IDuplexPipe
    {
        private readonly DroppingWriter _output = new(inner.Output);

        public PipeReader Input => inner.Input;

        public PipeWriter Output => _output;

        private sealed class DroppingWriter(PipeWriter inner) : PipeWriter
        {
            private byte[] _scratch = [];
            private bool _dropping;

            public override void Advance(int bytes)
            {
                if (!_dropping)
                {
                    inner.Advance(bytes);
                }
            }

            public override Memory<byte> GetMemory(int sizeHint = 0) => _dropping ? Scratch(sizeHint) : inner.GetMemory(sizeHint);

            public override Span<byte> GetSpan(int sizeHint = 0) => _dropping ? Scratch(sizeHint).Span : inner.GetSpan(sizeHint);

            public override void CancelPendingFlush() => inner.CancelPendingFlush();

            public override void Complete(Exception? exception = null) => inner.Complete(exception);

            public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
            {
                if (_dropping)
                {
                    return new FlushResult(isCanceled: false, isCompleted: false);
                }

                _dropping = true;
                return await inner.FlushAsync(cancellationToken);
            }

            private Memory<byte> Scratch(int sizeHint)
            {
                if (_scratch.Length < Math.Max(sizeHint, 4096))
                {
                    _scratch = new byte[Math.Max(sizeHint, 4096)];
                }

                return _scratch;
            }
        }
    }

    [Fact]
    public async Task A_relay_that_never_welcomes_fails_StartAsync_with_why_is_retried_after_a_back_off_and_disposing_the_agent_does_not_hang()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var silentIdentity = await kit.CreateIdentityAsync();
        using var silentKey = Protocol.Noise.Crypto.Curve25519Dh.Instance.GenerateKeyPair();
        var attestation = await silentIdentity.AttestChannelKeyAsync(silentKey.PublicKey.ToArray(), TimeSpan.FromDays(1), kit.Time);
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var handshakes = 0;
        var held = new System.Collections.Concurrent.ConcurrentBag<SecureChannel>();
        using var stop = new CancellationTokenSource();
        var serving = Task.Run(async () =>
        {
            // A "relay" that completes the secure channel and then never answers HELLO.
            while (!stop.IsCancellationRequested)
            {
                var socket = await listener.AcceptSocketAsync(stop.Token);
                var channel = await SecureChannel.AcceptAsync(new Protocol.Wire.SocketPipe(socket), new SecureChannelOptions
                {
                    Identity = silentIdentity,
                    ChannelKey = silentKey,
                    Attestation = attestation,
                    Verifier = new Protocol.Credentials.CredentialVerifier(kit.Anchors, new Protocol.Credentials.RevocationRegistry(), kit.Time),
                    Policy = Protocol.Policy.AccessPolicy.Parse("true"),
                    TimeProvider = kit.Time,
                    IdleTimeout = TimeSpan.FromHours(1),
                });
                held.Add(channel);
                Interlocked.Increment(ref handshakes);
            }
        });
        var identity = await kit.CreateIdentityAsync();
        var agent = new AgentClient(new AgentClientOptions
        {
            Identity = identity,
            Anchors = kit.Anchors,
            Credentials = [await kit.IssueAsync(identity, "user:alice", "role=worker")],
            Relays = [new RelayEndpoint((System.Net.IPEndPoint)listener.LocalEndpoint, silentIdentity.Identifier)],
            TimeProvider = kit.Time,
        });
        var starting = agent.StartAsync();

        for (var second = 0; Volatile.Read(ref handshakes) < 3; second++)
        {
            Assert.True(second < 300, "The agent stopped retrying a relay that never welcomed it.");
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
        }

        // The first attempt's failure is reported by StartAsync; the hop is still retried in the background.
        await Assert.ThrowsAsync<TimeoutException>(() => starting.WaitAsync(ClientTestKit.Guard));
        await agent.DisposeAsync().AsTask().WaitAsync(ClientTestKit.Guard);
        await agent.DisposeAsync(); // twice is harmless
        await stop.CancelAsync();
        listener.Stop();
        await Assert.ThrowsAnyAsync<Exception>(() => serving);
        foreach (var channel in held)
        {
            await channel.DisposeAsync();
        }
    }

    [Fact]
    public async Task Messages_sent_just_before_disposal_still_arrive_and_the_peer_then_hears_going_away()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var bob = await kit.StartAgentAsync(relay, "user:bob", ["role=billing"], Credentialed);
        var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
        var (opened, accepted) = await ClientTestKit.ConnectAsync(alice, bob);
        await using var _ = opened;

        // The opener reads nothing yet: disposal starts with messages still queued on the way (within the window, so
        // the sends never block), and they must all arrive, in order, before the peer hears GoingAway.
        const int Count = 40;
        for (var i = 0; i < Count; i++)
        {
            var message = new byte[4096];
            BitConverter.TryWriteBytes(message, i);
            await accepted.SendAsync(message).AsTask().WaitAsync(ClientTestKit.Guard);
        }

        var disposing = accepted.DisposeAsync().AsTask();
        for (var i = 0; i < Count; i++)
        {
            using var received = await opened.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
            Assert.Equal(i, BitConverter.ToInt32(received!.Payload.Span));
        }

        var ended = await Assert.ThrowsAsync<SecureChannelException>(() => opened.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard));
        Assert.Equal(ChannelErrorCode.GoingAway, ended.Code);
        await disposing.WaitAsync(ClientTestKit.Guard);
    }

    [Fact]
    public async Task A_peer_reached_by_name_must_hold_the_name_under_the_openers_own_trust_not_the_relays()
    {
        await using var kit = await ClientTestKit.CreateAsync();

        // The relay trusts a second authority for everything; alice trusts it for roles only, not for names.
        var rogue = await kit.CreateIdentityAsync();
        kit.Anchors.Trust(rogue.Verified);
        var relay = await kit.StartRelayAsync();
        var malloryIdentity = await kit.CreateIdentityAsync();
        var now = kit.Time.GetUtcNow();
        var rogueCredential = await Protocol.Credentials.CredentialIssuer.IssueAsync(rogue, malloryIdentity.Identifier, Protocol.Credentials.Principal.Parse("user:mallory"), Protocol.Credentials.AttributeSet.Parse(["role=billing", "relay-name=billing"]), now, now.AddHours(1), 0);
        await using var mallory = new AgentClient(new AgentClientOptions { Identity = malloryIdentity, Anchors = kit.Anchors, Credentials = [rogueCredential], Policy = Protocol.Policy.AccessPolicy.Parse("true"), Relays = [relay], Names = ["billing"], TimeProvider = kit.Time });
        await mallory.StartAsync().WaitAsync(ClientTestKit.Guard);
        var aliceIdentity = await kit.CreateIdentityAsync();
        await using var alice = new AgentClient(new AgentClientOptions
        {
            Identity = aliceIdentity,
            Anchors = new Protocol.Credentials.TrustAnchors().Trust(kit.Authority.Verified).Trust(rogue.Verified, ["role"]),
            Credentials = [await kit.IssueAsync(aliceIdentity, "user:alice", "role=orchestrator")],
            Policy = Protocol.Policy.AccessPolicy.Parse("true"),
            Relays = [relay],
            TimeProvider = kit.Time,
        });
        await alice.StartAsync().WaitAsync(ClientTestKit.Guard);

        var accepting = mallory.AcceptChannelAsync();
        var refused = await Assert.ThrowsAsync<SecureChannelException>(() => alice.OpenChannelAsync("billing").WaitAsync(ClientTestKit.Guard));
        Assert.Equal(ChannelErrorCode.AccessDenied, refused.Code);
        Assert.Contains("does not hold that address", refused.Message, StringComparison.Ordinal);
        await using (var atMallory = await accepting.WaitAsync(ClientTestKit.Guard))
        {
            var told = await atMallory.Completion.WaitAsync(ClientTestKit.Guard);
            Assert.Equal(ChannelErrorCode.AccessDenied, told.Code);
            Assert.True(told.FromPeer);
        }

        // By identifier, mallory is exactly who alice asked for.
        var (opened, accepted) = await ClientTestKit.ConnectAsync(alice, mallory);
        await using var _ = opened;
        await using var __ = accepted;
        Assert.Equal(mallory.Identifier, opened.Peer.Identifier);
        Assert.Equal(["billing"], opened.Peer.Attributes.Entries["role"]);
    }
}
