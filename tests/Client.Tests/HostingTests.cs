using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Client.Hosting;

namespace SecureChannels.Client.Tests;

public sealed class HostingTests
{
    private const string FromOrchestrators = "subject.role == \"orchestrator\"";
    private const string Credentialed = "peer.chain_length >= 1";

    [Fact]
    public async Task A_host_bound_from_configuration_starts_its_hop_and_its_handler_serves_a_channel_a_plain_agent_opens()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var identity = await kit.CreateIdentityAsync();
        var credential = await kit.IssueAsync(identity, "user:echo", "role=echo", "relay-name=echo");
        var configuration = HostingTestKit.Configuration(relay, FromOrchestrators, "echo");
        configuration[$"{HostingTestKit.Section}:FirstReconnectBackoff"] = "00:00:02";
        configuration[$"{HostingTestKit.Section}:DefaultRequestTimeout"] = "00:00:05";
        var host = HostingTestKit.Build(
            kit,
            configuration,
            o =>
            {
                o.Identity = identity;
                o.Anchors = kit.Anchors;
                o.Credentials = [credential];
            },
            client => client.AddChannelHandler<EchoHandler>());
        try
        {
            await host.StartAsync().WaitAsync(ClientTestKit.Guard);
            var agent = host.Services.GetRequiredService<AgentClient>();
            Assert.Equal(1, agent.HopsEstablished);
            Assert.Equal(identity.Identifier, agent.Identifier);
            Assert.Equal(["echo"], agent.Options.Names);
            Assert.Equal(FromOrchestrators, agent.Options.Policy?.Text);
            Assert.Equal(TimeSpan.FromSeconds(2), agent.Options.FirstReconnectBackoff);
            Assert.Equal(TimeSpan.FromSeconds(5), agent.Options.DefaultRequestTimeout);
            Assert.Same(kit.Time, agent.Options.TimeProvider);

            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], "subject.role == \"echo\"");
            await using var channel = await alice.OpenChannelAsync("echo@edge").WaitAsync(ClientTestKit.Guard);
            Assert.Equal(identity.Identifier, channel.Peer.Identifier);
            await HostingTestKit.AssertEchoesAsync(channel);

            await host.StopAsync().WaitAsync(ClientTestKit.Guard);
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public async Task At_most_MaxConcurrentChannels_handlers_run_and_the_next_channel_waits_until_one_returns()
    {
        const int Limit = 2;
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var probe = new HandlerProbe();
        var (host, agent) = await StartGatedHostAsync(kit, relay, probe, maxConcurrentChannels: Limit);
        try
        {
            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
            var gates = new List<TaskCompletionSource>();
            var channels = new List<AgentChannel>();
            for (var i = 0; i < Limit; i++)
            {
                channels.Add(await alice.OpenChannelAsync(agent.Identifier.ToString()).WaitAsync(ClientTestKit.Guard));
                gates.Add(await probe.Entered.Reader.ReadAsync().AsTask().WaitAsync(ClientTestKit.Guard));
            }

            var opening = alice.OpenChannelAsync(agent.Identifier.ToString());

            // Round trips on the first channel follow the third OPEN through the relay to the agent: after the first
            // echo that OPEN has reached the agent, and only the limit keeps the handler service from accepting it. The
            // further ones give an accept that ignored the limit time to show (its handshake takes a few round trips).
            for (var i = 0; i < 50; i++)
            {
                await HostingTestKit.AssertEchoesAsync(channels[0]);
                Assert.False(opening.IsCompleted, opening.IsFaulted ? opening.Exception!.ToString() : opening.Status.ToString());
                Assert.False(probe.Entered.Reader.TryRead(out _));
            }

            gates[0].SetResult();
            var third = await probe.Entered.Reader.ReadAsync().AsTask().WaitAsync(ClientTestKit.Guard);
            channels.Add(await opening.WaitAsync(ClientTestKit.Guard));
            Assert.Equal(Limit, probe.MaxRunning);
            await HostingTestKit.AssertEchoesAsync(channels[2]);

            // The released handler's channel was disposed when it returned.
            await channels[0].Completion.WaitAsync(ClientTestKit.Guard);

            gates[1].SetResult();
            third.SetResult();
            await channels[1].Completion.WaitAsync(ClientTestKit.Guard);
            await channels[2].Completion.WaitAsync(ClientTestKit.Guard);
            await host.StopAsync().WaitAsync(ClientTestKit.Guard);
            Assert.Equal(0, probe.Cancelled);
            foreach (var channel in channels)
            {
                await channel.DisposeAsync();
            }
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public async Task Stopping_the_host_cancels_running_handlers_disposes_their_channels_and_disposes_the_client()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var probe = new HandlerProbe();
        var (host, agent) = await StartGatedHostAsync(kit, relay, probe, maxConcurrentChannels: 4);
        try
        {
            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
            await using var first = await alice.OpenChannelAsync(agent.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
            await probe.Entered.Reader.ReadAsync().AsTask().WaitAsync(ClientTestKit.Guard);
            await using var second = await alice.OpenChannelAsync(agent.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
            await probe.Entered.Reader.ReadAsync().AsTask().WaitAsync(ClientTestKit.Guard);

            await host.StopAsync().WaitAsync(ClientTestKit.Guard);

            Assert.Equal(2, probe.Cancelled);
            await first.Completion.WaitAsync(ClientTestKit.Guard);
            await second.Completion.WaitAsync(ClientTestKit.Guard);

            // The client was disposed with the host.
            await Assert.ThrowsAsync<ObjectDisposedException>(() => agent.AcceptChannelAsync().WaitAsync(ClientTestKit.Guard));
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public async Task A_failing_handler_is_logged_with_the_peer_and_the_exception_type_but_not_its_message_and_its_channel_is_disposed()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var logs = new CapturingLoggerProvider();
        var (host, identity) = await HostingTestKit.BuildWorkerAsync<FailingHandler>(kit, relay, Credentialed, services: services => services.AddLogging(logging => logging.AddProvider(logs)));
        try
        {
            await host.StartAsync().WaitAsync(ClientTestKit.Guard);
            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
            await using var channel = await alice.OpenChannelAsync(identity.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
            await channel.SendAsync(new byte[] { 1, 2, 3 }).AsTask().WaitAsync(ClientTestKit.Guard);

            await channel.Completion.WaitAsync(ClientTestKit.Guard);
            await host.StopAsync().WaitAsync(ClientTestKit.Guard);

            var failure = Assert.Single(logs.Entries, e => e.Category.Contains("AgentChannelHandlerService", StringComparison.Ordinal) && e.Level == LogLevel.Warning);
            Assert.Contains(alice.Identifier.ToString(), failure.Message, StringComparison.Ordinal);
            Assert.Contains(typeof(InvalidDataException).FullName!, failure.Message, StringComparison.Ordinal);
            Assert.Null(failure.Exception);
            Assert.DoesNotContain(logs.Entries, e => e.Message.Contains(FailingHandler.Secret, StringComparison.Ordinal) || e.Exception is not null && e.Exception.Message.Contains(FailingHandler.Secret, StringComparison.Ordinal));
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public async Task A_handler_that_answers_and_returns_at_once_still_delivers_its_answer()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var (host, identity) = await HostingTestKit.BuildWorkerAsync<OneShotHandler>(kit, relay, Credentialed);
        try
        {
            await host.StartAsync().WaitAsync(ClientTestKit.Guard);
            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
            for (var i = 0; i < 20; i++)
            {
                await using var channel = await alice.OpenChannelAsync(identity.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
                await channel.SendAsync(new byte[] { 1, 2, 3 }).AsTask().WaitAsync(ClientTestKit.Guard);
                using var answer = await channel.ReceiveAsync().AsTask().WaitAsync(ClientTestKit.Guard);
                Assert.NotNull(answer);
                Assert.Equal(new byte[] { 3, 2, 1 }, answer.Payload.ToArray());
                await channel.Completion.WaitAsync(ClientTestKit.Guard);
            }

            await host.StopAsync().WaitAsync(ClientTestKit.Guard);
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public async Task The_client_reports_hops_and_channels_on_the_hosts_meter_factory_and_spans_on_its_activity_source()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var (host, identity) = await HostingTestKit.BuildWorkerAsync<EchoHandler>(kit, relay, Credentialed);
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var measurements = new ConcurrentDictionary<string, long>();
        using var meters = new MeterListener();

        // Other tests run agents at the same time: only the meter this host's factory created counts here.
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "SecureChannels.Client" && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name;
            foreach (var tag in tags)
            {
                key += $";{tag.Key}={tag.Value}";
            }

            measurements.AddOrUpdate(key, value, (_, sum) => sum + value);
        });
        meters.Start();
        var spans = new ConcurrentQueue<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "SecureChannels.Client",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(activities);
        try
        {
            await host.StartAsync().WaitAsync(ClientTestKit.Guard);
            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
            var address = identity.Identifier.ToString();
            await using (var channel = await alice.OpenChannelAsync(address).WaitAsync(ClientTestKit.Guard))
            {
                await HostingTestKit.AssertEchoesAsync(channel);
            }

            await host.StopAsync().WaitAsync(ClientTestKit.Guard);

            Assert.Equal(1, measurements.GetValueOrDefault("securechannels.client.hops.established"));
            Assert.Equal(1, measurements.GetValueOrDefault("securechannels.client.channels.opened;direction=inbound;outcome=ok"));
            var open = Assert.Single(spans, a => a.OperationName == "securechannels.open" && (string?)a.GetTagItem("securechannels.address") == address);
            Assert.Equal(ActivityStatusCode.Unset, open.Status);
            Assert.Contains(spans, a => a.OperationName == "securechannels.accept");
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Theory]
    [InlineData("endpoint", "SecureChannels:Client:Relays:0:EndPoint 'relay.example:7300'")]
    [InlineData("no-port", "SecureChannels:Client:Relays:0:EndPoint '127.0.0.1'")]
    [InlineData("identifier", "SecureChannels:Client:Relays:0:Identifier 'Inot-an-identifier'")]
    [InlineData("policy", "SecureChannels:Client:Policy is not a valid policy")]
    [InlineData("name", "SecureChannels:Client:Names:0 'Billing'")]
    [InlineData("backoff", "SecureChannels:Client:MaxReconnectBackoff 00:00:01")]
    [InlineData("concurrency", "SecureChannels:Client:MaxConcurrentChannels 0")]
    [InlineData("identity", "SecureChannels:Client:Identity is required")]
    [InlineData("authority", "SecureChannels:Client:Authority:EndPoint 'authority.example:7400'")]
    [InlineData("ticket-without-authority", "SecureChannels:Client:EnrollmentTicket is set but SecureChannels:Client:Authority is not")]
    [InlineData("bad-ticket", "SecureChannels:Client:EnrollmentTicket is not an enrollment ticket")]
    public async Task Invalid_options_fail_the_host_start_naming_the_problem(string broken, string expected)
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var identity = await kit.CreateIdentityAsync();
        var relayIdentifier = (await kit.CreateIdentityAsync()).Identifier;
        var configuration = HostingTestKit.Configuration(new RelayEndpoint(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7300), relayIdentifier), Credentialed, "billing");
        var section = HostingTestKit.Section;
        switch (broken)
        {
            case "endpoint":
                configuration[$"{section}:Relays:0:EndPoint"] = "relay.example:7300";
                break;
            case "no-port":
                configuration[$"{section}:Relays:0:EndPoint"] = "127.0.0.1";
                break;
            case "identifier":
                configuration[$"{section}:Relays:0:Identifier"] = "Inot-an-identifier";
                break;
            case "policy":
                configuration[$"{section}:Policy"] = "subject.role ==";
                break;
            case "name":
                configuration[$"{section}:Names:0"] = "Billing";
                break;
            case "backoff":
                configuration[$"{section}:FirstReconnectBackoff"] = "00:00:05";
                configuration[$"{section}:MaxReconnectBackoff"] = "00:00:01";
                break;
            case "concurrency":
                configuration[$"{section}:MaxConcurrentChannels"] = "0";
                break;
            case "authority":
                configuration[$"{section}:Authority:EndPoint"] = "authority.example:7400";
                configuration[$"{section}:Authority:Identifier"] = relayIdentifier.ToString();
                break;
            case "ticket-without-authority":
                configuration[$"{section}:EnrollmentTicket"] = Protocol.Authority.EnrollmentTicket.Create(relayIdentifier).Reveal();
                break;
            case "bad-ticket":
                configuration[$"{section}:Authority:EndPoint"] = "127.0.0.1:7400";
                configuration[$"{section}:Authority:Identifier"] = relayIdentifier.ToString();
                configuration[$"{section}:EnrollmentTicket"] = "sct1_secret-but-malformed";
                break;
        }

        var host = HostingTestKit.Build(
            kit,
            configuration,
            o =>
            {
                o.Identity = broken == "identity" ? null : identity;
                o.Anchors = kit.Anchors;
            },
            client => client.AddChannelHandler<EchoHandler>());
        try
        {
            var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync().WaitAsync(ClientTestKit.Guard));
            var only = Assert.Single(failure.Failures);
            Assert.StartsWith(expected, only, StringComparison.Ordinal);
            Assert.DoesNotContain("secret-but-malformed", only, StringComparison.Ordinal);
            Assert.Equal(typeof(SecureChannelsClientOptions), failure.OptionsType);
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public async Task Audit_events_set_in_code_reach_the_application_for_a_served_channel()
    {
        await using var kit = await ClientTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync();
        var opened = new TaskCompletionSource<Protocol.Channel.ChannelEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        var (host, identity) = await HostingTestKit.BuildWorkerAsync<EchoHandler>(kit, relay, Credentialed, o => o.Events = e =>
        {
            if (e.Kind == Protocol.Channel.ChannelEventKind.Opened)
            {
                opened.TrySetResult(e);
            }
        });
        try
        {
            await host.StartAsync().WaitAsync(ClientTestKit.Guard);
            var alice = await kit.StartAgentAsync(relay, "user:alice", ["role=orchestrator"], Credentialed);
            await using var channel = await alice.OpenChannelAsync(identity.Identifier.ToString()).WaitAsync(ClientTestKit.Guard);
            await HostingTestKit.AssertEchoesAsync(channel);
            var audit = await opened.Task.WaitAsync(ClientTestKit.Guard);
            Assert.Equal(alice.Identifier, audit.PeerIdentifier);
            Assert.Equal("user:alice", audit.Principal);
        }
        finally
        {
            await HostingTestKit.DisposeHostAsync(host);
        }
    }

    [Fact]
    public void A_second_handler_type_is_refused_and_the_same_one_twice_is_added_once()
    {
        var services = new ServiceCollection();
        var client = services.AddSecureChannelsClient().AddChannelHandler<EchoHandler>().AddChannelHandler<EchoHandler>();
        Assert.Equal(2, services.Count(d => d.ServiceType == typeof(IHostedService)));
        var refused = Assert.Throws<InvalidOperationException>(() => client.AddChannelHandler<FailingHandler>());
        Assert.Contains(nameof(EchoHandler), refused.Message, StringComparison.Ordinal);
    }

    private static async Task<(IHost Host, AgentClient Agent)> StartGatedHostAsync(ClientTestKit kit, RelayEndpoint relay, HandlerProbe probe, int maxConcurrentChannels)
    {
        var (host, identity) = await HostingTestKit.BuildWorkerAsync<GatedHandler>(kit, relay, Credentialed, o => o.MaxConcurrentChannels = maxConcurrentChannels, services => services.AddSingleton(probe));
        try
        {
            await host.StartAsync().WaitAsync(ClientTestKit.Guard);
        }
        catch
        {
            await HostingTestKit.DisposeHostAsync(host);
            throw;
        }

        return (host, host.Services.GetRequiredService<AgentClient>());
    }
}
