using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Samples.Common;
using Samples.Orchestrator;
using Samples.Worker;
using SecureChannels.Authority.Hosting;
using SecureChannels.Authority.Issuance;
using SecureChannels.Client;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Messaging;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;

namespace SecureChannels.Samples.Tests;

/// <summary>
/// The two samples as samples/README.md runs them, without <c>dotnet run</c>: an authority and a relay on loopback
/// (in-process, as <c>securechannels authority run</c> and <c>relay run</c> would start them), two tickets, the worker's
/// host, and the orchestrator's whole run.
/// </summary>
public sealed class SamplesEndToEndTests
{
    /// <summary>Where the library's hosted service logs the enrollment (event 90) and a refresh refused for good (91).</summary>
    private const string HostedServiceCategory = "SecureChannels.Client.Hosting.AgentClientHostedService";

    /// <summary>The safety net for awaits that would hang on a bug; never a timing assumption.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_worker_quotes_for_the_orchestrators_sub_agent_and_closes_its_channel_once_the_authority_revokes_it()
    {
        using var deadline = new CancellationTokenSource(Guard);
        var ct = deadline.Token;
        await using var world = await World.StartAsync(ct);
        var workerTicket = await world.CreateTicketAsync("system:worker", ["relay-name=worker"], maxDepth: 0, ct);
        var orchestratorTicket = await world.CreateTicketAsync("user:alice", ["tool=quotes", "tool=mail"], maxDepth: 1, ct);

        var workerLog = new CapturingLoggerProvider();
        var workerHost = await WorkerAgent.CreateHostAsync(
            [],
            builder =>
            {
                builder.Configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "samples", "Worker", "appsettings.json"), optional: false);
                builder.Configuration.AddInMemoryCollection(world.Settings(workerTicket));
                builder.Logging.ClearProviders();
                builder.Logging.AddProvider(workerLog);
            },
            ct);
        await using (workerHost as IAsyncDisposable)
        {
            // Started: the ticket redeemed at the authority, then the hop up and 'worker' registered at the relay (the
            // start waits for the first hop, which needs the credential).
            await workerHost.StartAsync(ct);
            var workerAgent = workerHost.Services.GetRequiredService<AgentClient>();
            Assert.Contains(workerLog.Entries, e => e.Category == HostedServiceCategory && e.EventId == 90 && e.Message.Contains("Enrolled at the authority: acting for system:worker", StringComparison.Ordinal));
            var workerCredential = Assert.Single(workerAgent.Credentials).Leaf.Credential;
            Assert.Equal("system:worker", workerCredential.Principal.ToString());

            var configuration = new ConfigurationBuilder()
                .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "samples", "Orchestrator", "appsettings.json"), optional: false)
                .AddInMemoryCollection(world.Settings(orchestratorTicket))
                .Build();
            using var output = new StringWriter();
            var run = await OrchestratorAgent.RunAsync(configuration, output, ct);
            var printed = output.ToString();

            Assert.True(run.ExitCode == 0, printed);
            Assert.Equal(
                [("widget", 4, 10.00m), ("gadget", 1, 12.00m), ("gizmo", 12, 9.00m)],
                run.Replies.Select(r => (r.Item, r.Quantity, r.Total)));
            Assert.All(run.Replies, r => Assert.Equal("user:alice", r.ApprovedFor));
            Assert.Equal(MessageFaultCode.BadRequest, run.BadRequestFault);
            Assert.NotNull(run.SubAgentChannelClosed);
            Assert.Equal(ChannelErrorCode.CredentialRevoked, run.SubAgentChannelClosed.Code);
            Assert.True(run.SubAgentChannelClosed.FromPeer, "the worker, subscribed to the authority, closed the channel");
            Assert.Contains("approved for user:alice", printed, StringComparison.Ordinal);
            Assert.Contains("chain length 1, attributes relay-name=worker", printed, StringComparison.Ordinal);

            // The worker's side: it saw the sub-agent as delegated by alice's orchestrator, and closed on the revocation,
            // which reached it through the subscription the host keeps up (SecureChannels:Client:Authority).
            await workerLog.WhenLoggedAsync(m => m.Contains("closed: CredentialRevoked", StringComparison.Ordinal)).WaitAsync(ct);
            Assert.Contains(workerLog.Messages, m => m.Contains("acts for user:alice, chain length 2, attributes tool=quotes", StringComparison.Ordinal));
            Assert.True(workerAgent.Options.Revocations.Find(world.Authority.Identifier)?.List.Sequence >= 1, "the worker holds the authority's revocation list");
            Assert.DoesNotContain(workerLog.Entries, e => e.Level >= LogLevel.Error);

            // Tickets are secrets: in nothing either sample printed or logged.
            foreach (var text in workerLog.Messages.Append(printed))
            {
                Assert.DoesNotContain(workerTicket, text, StringComparison.Ordinal);
                Assert.DoesNotContain(orchestratorTicket, text, StringComparison.Ordinal);
            }

            await workerHost.StopAsync(ct);
        }
    }

    [Fact]
    public async Task A_worker_whose_ticket_grants_no_name_or_was_used_says_why_and_never_prints_the_ticket()
    {
        using var deadline = new CancellationTokenSource(Guard);
        var ct = deadline.Token;
        await using var world = await World.StartAsync(ct);

        // Redeemed (the authority knows nothing else of what it grants until then), but relay-name=worker is missing:
        // the relay refuses to register the name, and the worker says which attribute the ticket needs.
        var nameless = await world.CreateTicketAsync("system:worker", ["tool=quotes"], maxDepth: 0, ct);
        var (exitCode, error, logged) = await RunWorkerAsync(world, nameless, ct);
        Assert.True(exitCode == 2, error);
        Assert.Contains("--attr relay-name=worker", error, StringComparison.Ordinal);

        // The same ticket again: it worked once, so the authority refuses it, before any hop.
        var (againCode, againError, againLogged) = await RunWorkerAsync(world, nameless, ct);
        Assert.True(againCode == 1, againError);
        Assert.StartsWith("error: enrolling at the authority:", againError, StringComparison.Ordinal);

        foreach (var text in logged.Concat(againLogged).Append(error).Append(againError))
        {
            Assert.DoesNotContain(nameless, text, StringComparison.Ordinal);
        }
    }

    /// <summary>The worker's whole run (<see cref="WorkerAgent.RunAsync(string[], Action{HostApplicationBuilder}?, TextWriter, CancellationToken)"/>) for a run that is expected not to start.</summary>
    private static async Task<(int ExitCode, string Error, IReadOnlyList<string> Logged)> RunWorkerAsync(World world, string ticket, CancellationToken ct)
    {
        var log = new CapturingLoggerProvider();
        using var error = new StringWriter();
        var exitCode = await WorkerAgent.RunAsync(
            [],
            builder =>
            {
                builder.Configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "samples", "Worker", "appsettings.json"), optional: false);
                builder.Configuration.AddInMemoryCollection(world.Settings(ticket));
                builder.Logging.ClearProviders();
                builder.Logging.AddProvider(log);
            },
            error,
            ct);
        return (exitCode, error.ToString(), [.. log.Messages]);
    }

    [Fact]
    public async Task A_missing_malformed_or_foreign_ticket_is_a_settings_error_that_names_the_key_and_never_the_ticket()
    {
        var folder = Directory.CreateTempSubdirectory("sc-samples-settings-").FullName;
        try
        {
            using var signer = InMemorySigner.Generate();
            var authority = await AgentIdentity.CreateAsync(signer, TimeProvider.System);
            var identityFile = Path.Combine(folder, "authority.identity");
            await File.WriteAllBytesAsync(identityFile, authority.History.Encoded);
            using var otherSigner = InMemorySigner.Generate();
            var foreign = EnrollmentTicket.Create((await AgentIdentity.CreateAsync(otherSigner, TimeProvider.System)).Identifier).Reveal();

            foreach (var (ticket, expected) in new[] { ("", "Ticket is not set"), ("sct1_not-a-ticket", "Ticket is not an enrollment ticket"), (foreign, "issued by another authority") })
            {
                var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Authority:IdentityFile"] = identityFile,
                    ["Relay:Identifier"] = authority.Identifier.ToString(),
                    ["Ticket"] = ticket,
                }).Build();
                using var output = new StringWriter();
                var run = await OrchestratorAgent.RunAsync(configuration, output, CancellationToken.None);
                Assert.Equal(2, run.ExitCode);
                Assert.Contains(expected, output.ToString(), StringComparison.Ordinal);
                if (ticket.Length > 0)
                {
                    Assert.DoesNotContain(ticket, output.ToString(), StringComparison.Ordinal);
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>An authority (SQLite in a temporary folder) and a relay trusting it, both on loopback port 0.</summary>
    private sealed class World : IAsyncDisposable
    {
        private readonly string _folder;
        private readonly InMemorySigner _authoritySigner;
        private readonly InMemorySigner _relaySigner;
        private readonly AgentIdentity _authority;
        private WebApplication? _authorityApp;
        private WebApplication? _relayApp;

        private World(string folder, InMemorySigner authoritySigner, InMemorySigner relaySigner, AgentIdentity authority)
        {
            _folder = folder;
            _authoritySigner = authoritySigner;
            _relaySigner = relaySigner;
            _authority = authority;
            AuthorityIdentityFile = Path.Combine(folder, "authority.identity");
        }

        /// <summary>The authority's exported identity, as <c>securechannels identity export</c> writes it.</summary>
        public string AuthorityIdentityFile { get; }

        public AuthorityServer Authority => _authorityApp!.Services.GetRequiredService<AuthorityServer>();

        public RelayServer Relay => _relayApp!.Services.GetRequiredService<RelayServer>();

        public static async Task<World> StartAsync(CancellationToken ct)
        {
            var folder = Directory.CreateTempSubdirectory("sc-samples-").FullName;
            var authoritySigner = InMemorySigner.Generate();
            var relaySigner = InMemorySigner.Generate();
            var authority = await AgentIdentity.CreateAsync(authoritySigner, TimeProvider.System, ct);
            var world = new World(folder, authoritySigner, relaySigner, authority);
            try
            {
                await File.WriteAllBytesAsync(world.AuthorityIdentityFile, authority.History.Encoded, ct);
                world._authorityApp = AuthorityApplication.Build([], authority, builder => Quiet(builder, new()
                {
                    ["Authority:Endpoint"] = "127.0.0.1:0",
                    ["Authority:MetricsEndpoint"] = "",
                    ["Authority:SqlitePath"] = Path.Combine(folder, "authority.db"),
                }));
                await world._authorityApp.StartAsync(ct);

                // Like 'securechannels relay run --trust authority.identity': it admits agents with a credential from
                // the authority (the default admission) and grants names by their relay-name attribute.
                var relayIdentity = await AgentIdentity.CreateAsync(relaySigner, TimeProvider.System, ct);
                var anchors = new TrustAnchors().Trust(authority.Verified);
                world._relayApp = RelayApplication.Build([], new RelayIdentity(relayIdentity, anchors, new RevocationRegistry(), []), builder => Quiet(builder, new()
                {
                    ["Relay:Endpoint"] = "127.0.0.1:0",
                    ["Relay:MetricsEndpoint"] = "",
                }));
                await world._relayApp.StartAsync(ct);
                return world;
            }
            catch
            {
                await world.DisposeAsync();
                throw;
            }
        }

        /// <summary>A one-time ticket, as <c>securechannels authority ticket create</c> prints it.</summary>
        public async Task<string> CreateTicketAsync(string principal, string[] attributes, int maxDepth, CancellationToken ct)
        {
            var request = new TicketRequest(Principal.Parse(principal), AttributeSet.Parse(attributes), TimeSpan.Zero, TimeSpan.Zero, maxDepth);
            var issued = await Authority.Service.CreateTicketAsync(Caller.Operator(_authority.Identifier), request, ct);
            return issued.Ticket.Reveal();
        }

        /// <summary>What a developer passes to either sample: the real endpoints, the identity file and a ticket.</summary>
        public Dictionary<string, string?> Settings(string ticket) => new()
        {
            ["Authority:EndPoint"] = Authority.EndPoint!.ToString(),
            ["Authority:IdentityFile"] = AuthorityIdentityFile,
            ["Relay:EndPoint"] = Relay.HopEndPoint!.ToString(),
            ["Relay:Identifier"] = Relay.Identifier.ToString(),
            ["Ticket"] = ticket,
        };

        public async ValueTask DisposeAsync()
        {
            if (_relayApp is not null)
            {
                await _relayApp.DisposeAsync();
            }

            if (_authorityApp is not null)
            {
                await _authorityApp.DisposeAsync();
            }

            _relaySigner.Dispose();
            _authoritySigner.Dispose();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(_folder, recursive: true);
        }

        private static void Quiet(WebApplicationBuilder builder, Dictionary<string, string?> settings)
        {
            builder.Configuration.AddInMemoryCollection(settings);
            builder.Logging.ClearProviders();
        }
    }

    /// <summary>Keeps every log entry (its category, event, level and formatted message), and lets a test wait for one.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<LogEntry> _entries = new();
        private readonly List<(Func<string, bool> Match, TaskCompletionSource Seen)> _waiters = [];
        private readonly Lock _lock = new();

        public IEnumerable<LogEntry> Entries => _entries;

        /// <summary>Each entry's message, with its exception's text when it had one: whatever a log sink would keep.</summary>
        public IEnumerable<string> Messages => _entries.Select(e => e.Message);

        public Task WhenLoggedAsync(Func<string, bool> match)
        {
            lock (_lock)
            {
                if (Messages.Any(match))
                {
                    return Task.CompletedTask;
                }

                var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((match, seen));
                return seen.Task;
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private void Add(LogEntry entry)
        {
            lock (_lock)
            {
                _entries.Enqueue(entry);
                foreach (var waiter in _waiters.Where(w => w.Match(entry.Message)).ToList())
                {
                    waiter.Seen.TrySetResult();
                    _waiters.Remove(waiter);
                }
            }
        }

        private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                provider.Add(new LogEntry(category, eventId.Id, logLevel, exception is null ? formatter(state, exception) : $"{formatter(state, exception)} {exception}"));
        }
    }

    private sealed record LogEntry(string Category, int EventId, LogLevel Level, string Message);
}
