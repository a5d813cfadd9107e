using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Hosting;
using SecureChannels.Authority.Issuance;
using SecureChannels.Client;
using SecureChannels.Client.Delegation;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Policy;
using SecureChannels.Relay.Hosting;

namespace SecureChannels.Cli.Commands;

/// <summary>
/// <c>securechannels demo</c>: the whole system in one process, on loopback, with nothing to configure. An authority
/// and a relay start; a user's orchestrator agent and a billing service enroll with one-time tickets; the
/// orchestrator delegates narrowed credentials to two sub-agents, which talk to billing through the relay; a
/// stranger is refused; a revocation closes one live channel; and the relay's own view shows only ciphertext.
/// </summary>
internal static class DemoCommand
{
    private const string Secret = "invoice 2026-114: pay 1,250 EUR to ACME";

    public static Command Create()
    {
        var command = new Command("demo", "Run the whole system once on loopback: authority, relay, an orchestrator with two delegated sub-agents, a service, a refusal and a revocation.");
        command.SetAction((_, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            try
            {
                return await RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or SecureChannelException or AuthorityException or System.Net.Sockets.SocketException or InvalidOperationException
                || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                // A step that did not happen is the demo failing, not the user's typing.
                return await CliOutput.ErrorAsync(ExitCodes.Failed, $"the demo failed: {e.Message}").ConfigureAwait(false);
            }
        }));
        return command;
    }

    private static async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var folder = Directory.CreateTempSubdirectory("securechannels-demo-").FullName;
        var owned = new List<IDisposable>();
        var clients = new List<IAsyncDisposable>();
        try
        {
            var time = TimeProvider.System;
            Step("1. An authority and a relay start on loopback.");
            var authorityIdentity = await NewIdentityAsync(owned);
            var authorityApp = AuthorityApplication.Build([], authorityIdentity, builder => Quiet(builder, new()
            {
                ["Authority:Endpoint"] = "127.0.0.1:0",
                ["Authority:MetricsEndpoint"] = "",
                ["Authority:SqlitePath"] = Path.Combine(folder, "authority.db"),
            }));
            clients.Add(authorityApp);
            await authorityApp.StartAsync(cancellationToken).ConfigureAwait(false);
            var authority = authorityApp.Services.GetRequiredService<AuthorityServer>();
            Say($"authority {Short(authority.Identifier)} on {authority.EndPoint}");

            var anchors = new TrustAnchors().Trust(authorityIdentity.Verified);
            var relayIdentity = await NewIdentityAsync(owned);
            var relayRevocations = new RevocationRegistry();
            var relayCredential = await CredentialIssuer.IssueAsync(authorityIdentity, relayIdentity.Identifier, Principal.Parse("system:edge"), AttributeSet.Parse(["role=relay"]), time.GetUtcNow(), time.GetUtcNow().AddHours(1), 0, cancellationToken).ConfigureAwait(false);
            var relayApp = RelayApplication.Build([], new Relay.Hops.RelayIdentity(relayIdentity, anchors, relayRevocations, [relayCredential]), builder => Quiet(builder, new()
            {
                ["Relay:Name"] = "edge",
                ["Relay:Endpoint"] = "127.0.0.1:0",
                ["Relay:MetricsEndpoint"] = "",
            }));
            clients.Add(relayApp);
            await relayApp.StartAsync(cancellationToken).ConfigureAwait(false);
            var relay = relayApp.Services.GetRequiredService<RelayServer>();
            Say($"relay 'edge' {Short(relay.Identifier)} on {relay.HopEndPoint}, admitting agents with a credential from the authority");
            var framesSeen = 0L;
            var plaintextSeen = 0;
            var secretBytes = Encoding.UTF8.GetBytes(Secret);
            relay.FrameObserver = frame =>
            {
                Interlocked.Increment(ref framesSeen);
                if (frame.Span.IndexOf(secretBytes) >= 0)
                {
                    Interlocked.Exchange(ref plaintextSeen, 1);
                }
            };
            var relayEndpoint = new RelayEndpoint(relay.HopEndPoint!, relay.Identifier);

            Step("2. Agents enroll with one-time tickets (no operator in the loop).");
            var operatorCaller = Caller.Operator(authorityIdentity.Identifier);
            async Task<AgentClient> EnrollAsync(string name, string principal, string[] attributes, string policy, int depth, string[] names)
            {
                var ticket = await authority.Service.CreateTicketAsync(operatorCaller, new TicketRequest(Principal.Parse(principal), AttributeSet.Parse(attributes), TimeSpan.Zero, TimeSpan.Zero, depth), cancellationToken).ConfigureAwait(false);
                var agent = new AgentClient(new AgentClientOptions { Identity = await NewIdentityAsync(owned), Anchors = anchors, Policy = AccessPolicy.Parse(policy), Relays = [relayEndpoint], Names = names });
                clients.Add(agent);
                var chain = await agent.EnrollAsync(authority.EndPoint!, authorityIdentity.Identifier, ticket.Ticket.Reveal(), cancellationToken).ConfigureAwait(false);
                Say($"{name,-13} {Short(agent.Identifier)} enrolled: acts for {chain.Leaf.Credential.Principal}, {chain.Leaf.Credential.Attributes}, until {CliOutput.Time(chain.Leaf.Credential.NotAfter)}");
                return agent;
            }

            var billingPolicy = "peer.principal == \"user:alice\" && subject.tool in [\"invoices\", \"payments\"]";
            var billing = await EnrollAsync("billing", "system:billing", ["role=service", "relay-name=billing"], billingPolicy, 0, ["billing"]).ConfigureAwait(false);
            var orchestrator = await EnrollAsync("orchestrator", "user:alice", ["role=orchestrator", "tool=invoices", "tool=payments", "tool=mail"], "peer.identifier != \"\"", 1, []).ConfigureAwait(false);
            var mallory = await EnrollAsync("mallory", "user:mallory", ["role=intern", "tool=invoices"], "peer.chain_length >= 1", 0, []).ConfigureAwait(false);
            var billingSubscription = billing.CreateAuthoritySubscription(authority.EndPoint!, authorityIdentity.Identifier);
            using var stopSubscription = new CancellationTokenSource();
            var subscribed = billingSubscription.RunAsync(stopSubscription.Token);
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), time))
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token))
            {
                while (billingSubscription.Subscriptions == 0)
                {
                    // Waiting for the subscription (its own task) to report in; bounded by the deadline.
                    await Task.Delay(TimeSpan.FromMilliseconds(10), time, deadline.Token).ConfigureAwait(false);
                }
            }

            Say("billing       subscribed to the authority's revocation lists");

            Step("3. The orchestrator delegates narrowed credentials to two sub-agents and registers them.");
            var orchestratorAuthority = await orchestrator.ConnectToAuthorityAsync(authority.EndPoint!, authorityIdentity.Identifier, presentCredentials: true, cancellationToken).ConfigureAwait(false);
            clients.Add(orchestratorAuthority);
            async Task<SubAgent> DelegateAsync(string name, string tool, TimeSpan lifetime)
            {
                var spawned = await orchestrator.SpawnSubAgentAsync(
                    new SubAgentOptions
                    {
                        Attributes = AttributeSet.Parse([$"tool={tool}"]),
                        Lifetime = lifetime,
                        Policy = AccessPolicy.Parse($"peer.identifier == \"{billing.Identifier}\""),
                        Registrar = orchestratorAuthority,
                        Listen = false,
                    },
                    cancellationToken).ConfigureAwait(false);
                clients.Add(spawned);
                var credential = spawned.Credential.Leaf.Credential;
                Say($"{name,-13} {Short(spawned.Identifier)} may use {credential.Attributes} for {credential.Principal} until {CliOutput.Time(credential.NotAfter)} (registered: {spawned.Credential.Registrations.Length} receipt)");
                return spawned;
            }

            var invoicesBot = await DelegateAsync("invoices-bot", "invoices", TimeSpan.FromMinutes(30)).ConfigureAwait(false);
            var paymentsBot = await DelegateAsync("payments-bot", "payments", TimeSpan.FromMinutes(15)).ConfigureAwait(false);
            var (invoices, payments) = (invoicesBot.Client, paymentsBot.Client);
            await Task.WhenAll(billing.StartAsync(cancellationToken), mallory.StartAsync(cancellationToken)).ConfigureAwait(false);

            // The billing service accepts every channel its policy allows and answers each request.
            var served = new System.Collections.Concurrent.ConcurrentDictionary<Identifier, AgentChannel>();
            using var stopServing = new CancellationTokenSource();
            var serving = Task.Run(async () =>
            {
                try
                {
                    await foreach (var channel in billing.AcceptChannelsAsync(stopServing.Token).ConfigureAwait(false))
                    {
                        served[channel.Peer.Identifier] = channel;
                        _ = ServeAsync(channel);
                    }
                }
                catch (OperationCanceledException)
                {
                    // The demo is over.
                }
            }, CancellationToken.None);

            Step("4. The sub-agents open end-to-end channels to 'billing@edge' through the relay.");
            var agentChannels = new List<AgentChannel>();
            foreach (var (agent, name) in new[] { (invoices, "invoices-bot"), (payments, "payments-bot") })
            {
                var opened = await agent.OpenChannelAsync("billing@edge", cancellationToken).ConfigureAwait(false);
                agentChannels.Add(opened);
                var answer = await AskAsync(opened, Secret, cancellationToken).ConfigureAwait(false);
                var peer = served[agent.Identifier].Peer;
                Say($"billing sees  {Short(peer.Identifier)}: acts for {peer.Principal}, {peer.Attributes}, via {string.Join(" <- ", peer.Credentials[0].Hops.Select(h => Short(h.Subject)).Reverse())} <- authority {Short(peer.Credentials[0].Authority)}, until {CliOutput.Time(peer.NotAfter)}");
                Say($"{name,-13} sees billing {Short(opened.Peer.Identifier)}: acts for {opened.Peer.Principal}, {opened.Peer.Attributes}");
                Say($"message       '{Secret}' -> '{answer}'");
            }

            Step("5. A stranger is refused: mallory's credential does not satisfy billing's policy.");
            Say($"billing's policy: {billing.Options.Policy!.Text}");
            try
            {
                await using var refused = await mallory.OpenChannelAsync("billing@edge", cancellationToken).ConfigureAwait(false);
                Say("UNEXPECTED: mallory got a channel");
                return ExitCodes.Failed;
            }
            catch (SecureChannelException e)
            {
                Say($"mallory       refused{(e.FromPeer ? " by billing" : string.Empty)}: {e.Code}");
            }

            Step("6. The orchestrator withdraws the payments-bot's delegation; its live channel closes, the other stays.");
            var started = Stopwatch.GetTimestamp();
            var sequence = await paymentsBot.RevokeAsync(orchestratorAuthority, "payment run finished", cancellationToken).ConfigureAwait(false);
            var closed = await served[payments.Identifier].Completion.WaitAsync(TimeSpan.FromSeconds(10), time, cancellationToken).ConfigureAwait(false);
            Say($"revocation list {sequence} pushed; billing closed the payments-bot channel after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms: {closed.Code}");
            var botSaw = await agentChannels[1].Completion.WaitAsync(TimeSpan.FromSeconds(10), time, cancellationToken).ConfigureAwait(false);
            Say($"payments-bot  was told by billing: {botSaw.Code}");
            Say($"invoices-bot  still talks to billing: '{await AskAsync(agentChannels[0], "invoice 2026-115?", cancellationToken).ConfigureAwait(false)}'");

            Step("7. What the relay held in the clear after decrypting its hops: routing frames and ciphertext.");
            Say($"frames seen by the relay: {Interlocked.Read(ref framesSeen)}; the message text inside any of them: {(Volatile.Read(ref plaintextSeen) != 0 ? "YES (a bug)" : "never")}");
            Say($"audit log: {(await authority.Service.VerifyAuditAsync(cancellationToken: cancellationToken).ConfigureAwait(false)) switch { { IsIntact: true } v => $"intact, {v.RecordsChecked} signed records", var v => $"TAMPERED at {v.FirstBadSequence}" }}");

            await stopSubscription.CancelAsync().ConfigureAwait(false);
            await subscribed.ConfigureAwait(false);
            await stopServing.CancelAsync().ConfigureAwait(false);
            await serving.ConfigureAwait(false);
            foreach (var channel in served.Values.Concat(agentChannels))
            {
                await channel.DisposeAsync().ConfigureAwait(false);
            }

            Step("Done: every channel above was end-to-end encrypted and mutually authenticated; see README for the next steps.");
            return Volatile.Read(ref plaintextSeen) != 0 ? ExitCodes.Failed : ExitCodes.Ok;
        }
        finally
        {
            for (var i = clients.Count - 1; i >= 0; i--)
            {
                await clients[i].DisposeAsync().ConfigureAwait(false);
            }

            foreach (var item in owned)
            {
                item.Dispose();
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    // The billing service: every request is answered, until the channel ends (for whatever reason it reports).
    private static async Task ServeAsync(AgentChannel channel)
    {
        try
        {
            while (await channel.ReceiveAsync().ConfigureAwait(false) is { } request)
            {
                using (request)
                {
                    _ = request.Deserialize<string>();
                    await request.RespondAsync("approved").ConfigureAwait(false);
                }
            }
        }
        catch (SecureChannelException)
        {
            // Closed with a reason (revoked, expired, the peer left): the channel's Completion says which.
        }
    }

    // A typed request (MessagePack) with its correlated response, end to end through the relay.
    private static Task<string> AskAsync(AgentChannel channel, string question, CancellationToken cancellationToken) =>
        channel.RequestAsync<string, string>(question, TimeSpan.FromSeconds(10), cancellationToken);

    private static async Task<AgentIdentity> NewIdentityAsync(List<IDisposable> owned)
    {
        var signer = InMemorySigner.Generate();
        owned.Add(signer);
        return await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false);
    }

    private static void Quiet(WebApplicationBuilder builder, Dictionary<string, string?> settings)
    {
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
    }

    private static string Short(Identifier identifier) => identifier.ToString()[..9] + "…";

    private static void Step(string text)
    {
        Console.WriteLine();
        Console.WriteLine(text);
    }

    private static void Say(string text) => Console.WriteLine($"   {text}");
}
