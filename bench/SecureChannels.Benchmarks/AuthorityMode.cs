using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Hosting;
using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;
using SecureChannels.Protocol.Policy;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks;

/// <summary>
/// <c>--authority</c>: the authority service on loopback with its embedded SQLite store, on the real clock.
/// (1) Enrollment: 1,000 agents enroll at once, each over its own TCP connection and secure channel, with a
/// ticket made beforehand; enrollments per second and per-agent latency (connect, handshake, ENROLL).
/// (2) Revocation propagation: 1,000 subscribed agents, each holding a live channel with one of 40 workers;
/// each of 40 revocations (one worker's credential) is timed from the revoke call to each affected channel
/// closed, and to the last subscriber having the new list.
/// </summary>
internal static class AuthorityMode
{
    public const string Switch = "--authority";

    private const int Agents = 1000;
    private const int EnrollRounds = 3;
    private const int Workers = 40;

    public static int Run() => RunAsync().GetAwaiter().GetResult();

    private static async Task<int> RunAsync()
    {
        var output = Console.Out;
        var started = Stopwatch.GetTimestamp();
        output.WriteLine("=== SecureChannels --authority ===");
        output.WriteLine(Invariant($"Machine: {Environment.ProcessorCount} logical cores; load average before: {LoadAverage()}. Authority, agents and store (SQLite, WAL) in this process, loopback TCP, TimeProvider.System."));
        output.WriteLine();
        var folder = Directory.CreateTempSubdirectory("sc-bench-authority-").FullName;
        using var signer = InMemorySigner.Generate();
        var identity = await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false);
        var app = AuthorityApplication.Build([], identity, builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Authority:Endpoint"] = "127.0.0.1:0",
                ["Authority:MetricsEndpoint"] = "",
                ["Authority:SqlitePath"] = Path.Combine(folder, "authority.db"),
                ["Authority:EnrollmentBurst"] = "100000",
                ["Authority:MaxPendingHandshakes"] = "4096",
            });
            builder.Logging.ClearProviders();
        });
        await using (app.ConfigureAwait(false))
        {
            await app.StartAsync().ConfigureAwait(false);
            var server = app.Services.GetRequiredService<AuthorityServer>();
            await EnrollmentAsync(output, server, identity).ConfigureAwait(false);
            output.WriteLine();
            await PropagationAsync(output, server, identity).ConfigureAwait(false);
            await app.StopAsync().ConfigureAwait(false);
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(folder, recursive: true);
        output.WriteLine();
        output.WriteLine(Invariant($"Load average after: {LoadAverage()}; {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s in all."));
        return 0;
    }

    private static async Task EnrollmentAsync(TextWriter output, AuthorityServer server, AgentIdentity authority)
    {
        output.WriteLine(Invariant($"--- Enrollment: {Agents} agents at once, each TCP connect + XX handshake + ENROLL (ticket check, issue, store, audit in one transaction); {EnrollRounds} rounds ---"));
        output.WriteLine("| round | enrollments/s | p50 latency | p99 latency |");
        output.WriteLine("|---|---|---|---|");
        var rates = new List<double>();
        for (var round = 1; round <= EnrollRounds; round++)
        {
            var operatorCaller = Caller.Operator(authority.Identifier);
            var tickets = new string[Agents];
            var agents = new Agent[Agents];
            for (var i = 0; i < Agents; i++)
            {
                var ticket = await server.Service.CreateTicketAsync(operatorCaller, new TicketRequest(Principal.Parse(Invariant($"user:u{round}-{i}")), AttributeSet.Parse(["role=worker"]), TimeSpan.Zero, TimeSpan.Zero, 1)).ConfigureAwait(false);
                tickets[i] = ticket.Ticket.Reveal();
                agents[i] = await Agent.CreateAsync().ConfigureAwait(false);
            }

            var latencies = new double[Agents];
            var begin = Stopwatch.GetTimestamp();
            await Task.WhenAll(Enumerable.Range(0, Agents).Select(async i =>
            {
                var t0 = Stopwatch.GetTimestamp();
                var client = await ConnectAsync(server, agents[i]).ConfigureAwait(false);
                await using (client.ConfigureAwait(false))
                {
                    var chain = await client.EnrollAsync(tickets[i]).ConfigureAwait(false);
                    latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    if (chain.Leaf.Credential.Subject != agents[i].Identity.Identifier)
                    {
                        throw new InvalidOperationException("The authority issued a credential to the wrong subject.");
                    }
                }
            })).ConfigureAwait(false);
            var seconds = Stopwatch.GetElapsedTime(begin).TotalSeconds;
            rates.Add(Agents / seconds);
            Array.Sort(latencies);
            output.WriteLine(Invariant($"| {round} | {Agents / seconds:F0} | {Quantile(latencies, 0.5):F1} ms | {Quantile(latencies, 0.99):F1} ms |"));
            foreach (var agent in agents)
            {
                agent.Dispose();
            }
        }

        rates.Sort();
        output.WriteLine(Invariant($"Median: {rates[rates.Count / 2]:F0} enrollments/s."));

        // The same connections without the ENROLL: what the handshakes alone (both sides in this process) cost.
        var agentsOnly = new Agent[Agents];
        for (var i = 0; i < Agents; i++)
        {
            agentsOnly[i] = await Agent.CreateAsync().ConfigureAwait(false);
        }

        var handshakeBegin = Stopwatch.GetTimestamp();
        await Task.WhenAll(agentsOnly.Select(async agent =>
        {
            var client = await ConnectAsync(server, agent).ConfigureAwait(false);
            await client.DisposeAsync().ConfigureAwait(false);
        })).ConfigureAwait(false);
        output.WriteLine(Invariant($"Baseline, the same {Agents} connections and handshakes without ENROLL: {Agents / Stopwatch.GetElapsedTime(handshakeBegin).TotalSeconds:F0} per second."));
        foreach (var agent in agentsOnly)
        {
            agent.Dispose();
        }
    }

    private static async Task PropagationAsync(TextWriter output, AuthorityServer server, AgentIdentity authority)
    {
        output.WriteLine(Invariant($"--- Revocation propagation: {Agents} subscribed agents, each with a live channel to one of {Workers} workers; {Workers} revocations of one worker's credential each ---"));
        var anchors = new TrustAnchors().Trust(authority.Verified);
        var now = DateTimeOffset.UtcNow;
        var workers = new List<(Agent Agent, CredentialChain Chain)>();
        for (var w = 0; w < Workers; w++)
        {
            var agent = await Agent.CreateAsync().ConfigureAwait(false);
            var chain = await CredentialIssuer.IssueAsync(authority, agent.Identity.Identifier, Principal.Parse(Invariant($"user:w{w}")), AttributeSet.Parse(["role=worker"]), now, now.AddHours(1), 0).ConfigureAwait(false);
            workers.Add((agent, chain));
        }

        var subscribers = new List<Subscriber>();
        for (var i = 0; i < Agents; i++)
        {
            var agent = await Agent.CreateAsync().ConfigureAwait(false);
            var revocations = new RevocationRegistry();
            var client = await ConnectAsync(server, agent).ConfigureAwait(false);
            await client.SubscribeAsync(revocations).ConfigureAwait(false);
            var worker = workers[i % Workers];
            var (a, b) = InMemoryConnection.CreatePipes();
            var verifierOptions = Options(agent, anchors, revocations, "peer.chain_length >= 1", []);
            var accept = SecureChannel.AcceptAsync(b, verifierOptions);
            var connect = SecureChannel.ConnectAsync(a, Options(worker.Agent, anchors, new RevocationRegistry(), Invariant($"peer.identifier == \"{agent.Identity.Identifier}\""), [worker.Chain]));
            var workerEnd = await connect.ConfigureAwait(false);
            subscribers.Add(new Subscriber(agent, client, revocations, await accept.ConfigureAwait(false), workerEnd, i % Workers));
        }

        output.WriteLine(Invariant($"Subscribers connected: {server.SubscriberCount}."));
        var toChannelClosed = new List<double>();
        var toAllSubscribers = new List<double>();
        var revokeCalls = new List<double>();
        var written = new List<double>();
        var lastWrite = 0.0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "securechannels.authority.propagation")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, milliseconds, _, _) =>
        {
            lock (written)
            {
                lastWrite = Math.Max(lastWrite, milliseconds);
            }
        });
        listener.Start();
        for (var w = 0; w < Workers; w++)
        {
            var affected = subscribers.Where(s => s.Worker == w).ToList();
            var closedAt = affected.Select(s => s.Channel.Completion.ContinueWith(static _ => Stopwatch.GetTimestamp(), TaskScheduler.Default)).ToList();
            var expected = (ulong)(w + 1);
            var appliedAt = subscribers.Select(s => s.WhenApplied(expected)).ToList();
            var t0 = Stopwatch.GetTimestamp();
            await server.Service.RevokeAsync(Caller.Operator(authority.Identifier), RevocationEntry.ForCredential(workers[w].Chain.Leaf.Credential.Id), "benchmark").ConfigureAwait(false);
            revokeCalls.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            foreach (var at in await Task.WhenAll(closedAt).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false))
            {
                toChannelClosed.Add(Stopwatch.GetElapsedTime(t0, at).TotalMilliseconds);
            }

            var last = (await Task.WhenAll(appliedAt).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false)).Max();
            toAllSubscribers.Add(Stopwatch.GetElapsedTime(t0, last).TotalMilliseconds);
            lock (written)
            {
                // Measured by the authority from its publication (after the commit) to each push written to a socket.
                written.Add(lastWrite + revokeCalls[^1]);
                lastWrite = 0;
            }
            if (affected.Any(s => s.Channel.Completion.Result.Code != ChannelErrorCode.CredentialRevoked))
            {
                throw new InvalidOperationException("A channel closed for another reason than the revocation.");
            }
        }

        var closed = toChannelClosed.ToArray();
        Array.Sort(closed);
        var all = toAllSubscribers.ToArray();
        Array.Sort(all);
        var calls = revokeCalls.ToArray();
        Array.Sort(calls);
        output.WriteLine("| from the revoke call to | samples | p50 | p99 | max |");
        output.WriteLine("|---|---|---|---|---|");
        output.WriteLine(Invariant($"| its return (list signed, stored, audited, committed, handed to the fan-out) | {calls.Length} | {Quantile(calls, 0.5):F1} ms | {Quantile(calls, 0.99):F1} ms | {calls[^1]:F1} ms |"));
        var writes = written.ToArray();
        Array.Sort(writes);
        output.WriteLine(Invariant($"| the authority's last push written to a subscriber's socket | {writes.Length} | {Quantile(writes, 0.5):F1} ms | {Quantile(writes, 0.99):F1} ms | {writes[^1]:F1} ms |"));
        output.WriteLine(Invariant($"| an affected channel closed (goal p99 ≤ 100 ms) | {closed.Length} | {Quantile(closed, 0.5):F1} ms | {Quantile(closed, 0.99):F1} ms | {closed[^1]:F1} ms |"));
        output.WriteLine(Invariant($"| the last of {Agents} subscribers holding the list | {all.Length} | {Quantile(all, 0.5):F1} ms | {Quantile(all, 0.99):F1} ms | {all[^1]:F1} ms |"));
        foreach (var subscriber in subscribers)
        {
            await subscriber.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var (agent, _) in workers)
        {
            agent.Dispose();
        }
    }

    private static async Task<AuthorityClient> ConnectAsync(AuthorityServer server, Agent agent)
    {
        var socket = await LoopbackTcp.ConnectAsync(server.EndPoint!).ConfigureAwait(false);
        var options = Options(agent, new TrustAnchors(), new RevocationRegistry(), Invariant($"peer.identifier == \"{server.Identifier}\""), []);
        var channel = await SecureChannel.ConnectAsync(LoopbackTcp.Pipe(socket), options).ConfigureAwait(false);
        return new AuthorityClient(channel);
    }

    private static SecureChannelOptions Options(Agent agent, TrustAnchors anchors, RevocationRegistry revocations, string policy, IReadOnlyList<CredentialChain> credentials) => new()
    {
        Identity = agent.Identity,
        ChannelKey = agent.ChannelKey,
        Attestation = agent.Attestation,
        Credentials = credentials,
        Verifier = new CredentialVerifier(anchors, revocations, TimeProvider.System),
        Revocations = revocations,
        Policy = AccessPolicy.Parse(policy),
        IdleTimeout = TimeSpan.FromMinutes(10),
    };


    private sealed class Agent(AgentIdentity identity, InMemorySigner signer, DhKeyPair channelKey, SignedKeyAttestation attestation) : IDisposable
    {
        public AgentIdentity Identity { get; } = identity;

        public DhKeyPair ChannelKey { get; } = channelKey;

        public SignedKeyAttestation Attestation { get; } = attestation;

        public static async Task<Agent> CreateAsync()
        {
            var signer = InMemorySigner.Generate();
            var identity = await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false);
            var key = Curve25519Dh.Instance.GenerateKeyPair();
            var attestation = await identity.AttestChannelKeyAsync(key.PublicKey.ToArray(), TimeSpan.FromDays(1), TimeProvider.System).ConfigureAwait(false);
            return new Agent(identity, signer, key, attestation);
        }

        public void Dispose()
        {
            ChannelKey.Dispose();
            signer.Dispose();
        }
    }

    private sealed class Subscriber(Agent agent, AuthorityClient client, RevocationRegistry revocations, SecureChannel channel, SecureChannel workerEnd, int worker) : IAsyncDisposable
    {
        public SecureChannel Channel { get; } = channel;

        public int Worker { get; } = worker;

        /// <summary>Completes with the time the subscriber first holds list <paramref name="sequence"/> or newer.</summary>
        public Task<long> WhenApplied(ulong sequence)
        {
            var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            void Check(Identifier _)
            {
                if (revocations.Find(client.Authority.Identifier)?.List.Sequence >= sequence)
                {
                    done.TrySetResult(Stopwatch.GetTimestamp());
                }
            }

            revocations.Changed += Check;
            Check(default);
            return done.Task.ContinueWith(t =>
            {
                revocations.Changed -= Check;
                return t.Result;
            }, TaskScheduler.Default);
        }

        public async ValueTask DisposeAsync()
        {
            await Channel.DisposeAsync().ConfigureAwait(false);
            await workerEnd.DisposeAsync().ConfigureAwait(false);
            await client.DisposeAsync().ConfigureAwait(false);
            agent.Dispose();
        }
    }

}
