using System.CommandLine;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using SecureChannels.Authority;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Hosting;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Cli.Commands;

/// <summary>
/// <c>securechannels authority</c>: runs the authority service, and lets its operator act on the authority's
/// own data folder (tickets, revocations, registry queries, policies, the audit log). A running authority
/// picks up what the operator commands publish within its store poll interval.
/// </summary>
internal static class AuthorityCommand
{
    // As for the relay: without SECURECHANNELS_PASSPHRASE the authority still starts (the README's first command
    // needs no setup), its key file then protected by its permissions alone; it says so.
    private const string DevelopmentPassphrase = "securechannels-authority-development-only";
    private const string PostgresVariable = "SECURECHANNELS_AUTHORITY_POSTGRES";

    public static Command Create() => new("authority", "Run the authority (enrollment, issuance, delegation registry, revocation and policy publication; docs/protocol.md §10) and operate it.")
    {
        CreateRun(),
        new Command("ticket", "Enrollment tickets.") { CreateTicket() },
        CreateRevoke(),
        CreateQuery(),
        new Command("audit", "The tamper-evident audit log.") { CreateAuditVerify(), CreateAuditExport() },
        new Command("policy", "Policy documents published to enforcement points.") { CreatePublish() },
    };

    private sealed record Common(Option<string> Directory, Option<string> Identity, Option<string?> Data, Option<string?> Postgres, Option<bool> FastKdf)
    {
        public static Common Create() => new(
            IdentityStore.DirectoryOption(),
            new Option<string>("--identity") { HelpName = "NAME", Description = "The authority's identity in the identity directory.", DefaultValueFactory = _ => "authority" },
            new Option<string?>("--data") { HelpName = "PATH", Description = "The authority's data folder (its SQLite store). Defaults to DIR/authority-data." },
            new Option<string?>("--postgres") { HelpName = "CONNECTION", Description = $"Use this PostgreSQL database instead of SQLite (or set {PostgresVariable})." },
            IdentityStore.FastKdfOption());

        public void AddTo(Command command)
        {
            command.Options.Add(Directory);
            command.Options.Add(Identity);
            command.Options.Add(Data);
            command.Options.Add(Postgres);
            command.Options.Add(FastKdf);
        }

        public AuthorityOptions Options(ParseResult parse)
        {
            var directory = parse.GetValue(Directory)!;
            var data = Path.GetFullPath(parse.GetValue(Data) ?? Path.Combine(directory, "authority-data"));
            // The store holds who may do what; only the authority's own user reads it.
            if (OperatingSystem.IsWindows())
            {
                System.IO.Directory.CreateDirectory(data);
            }
            else
            {
                System.IO.Directory.CreateDirectory(data, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            var postgres = parse.GetValue(Postgres) ?? Environment.GetEnvironmentVariable(PostgresVariable);
            return new AuthorityOptions
            {
                Store = string.IsNullOrEmpty(postgres) ? AuthorityStoreKind.Sqlite : AuthorityStoreKind.Postgres,
                SqlitePath = Path.Combine(data, "authority.db"),
                PostgresConnectionString = postgres,
            };
        }

        public async Task<OpenIdentity> OpenIdentityAsync(ParseResult parse, bool create, CancellationToken cancellationToken)
        {
            var store = new IdentityStore(parse.GetValue(Directory)!, parse.GetValue(FastKdf));
            var name = parse.GetValue(Identity)!;
            var passphrase = Environment.GetEnvironmentVariable(IdentityStore.PassphraseVariable) is { Length: > 0 } secret ? secret.AsMemory() : DevelopmentPassphrase.AsMemory();
            if (passphrase.Span.SequenceEqual(DevelopmentPassphrase))
            {
                await CliOutput.WarnAsync($"{IdentityStore.PassphraseVariable} is not set: the authority's key file is protected by its file permissions only.").ConfigureAwait(false);
            }

            if (File.Exists(store.HistoryPath(name)))
            {
                return await store.OpenAsync(name, passphrase, cancellationToken).ConfigureAwait(false);
            }

            return create
                ? await store.CreateAsync(name, passphrase, cancellationToken).ConfigureAwait(false)
                : throw CliException.Usage($"No authority identity '{name}' in {store.DirectoryPath}: run 'securechannels authority run' once first.");
        }

        /// <summary>Runs <paramref name="work"/> as the local operator on the authority's store.</summary>
        public Func<ParseResult, CancellationToken, Task<int>> Operate(Func<ParseResult, AuthorityService, Caller, CancellationToken, Task<int>> work) =>
            (parse, cancellationToken) => CliOutput.RunAsync(async () =>
            {
                await using var identity = await OpenIdentityAsync(parse, create: false, cancellationToken).ConfigureAwait(false);
                var options = Options(parse);
                await using var store = AuthorityApplication.OpenStore(options);
                using var metrics = new AuthorityMetrics();
                var service = new AuthorityService(identity.Agent, store, options, TimeProvider.System, metrics, NullLogger<AuthorityService>.Instance);
                await service.InitializeAsync(cancellationToken).ConfigureAwait(false);
                return await work(parse, service, Caller.Operator(identity.Agent.Identifier), cancellationToken).ConfigureAwait(false);
            });
    }

    private static Command CreateRun()
    {
        var common = Common.Create();
        var command = new Command("run", "Run the authority until interrupted. Settings: appsettings.json, environment variables (Authority__Endpoint), or arguments (--Authority:Endpoint=127.0.0.1:7400).");
        common.AddTo(command);
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            await using var identity = await common.OpenIdentityAsync(parse, create: true, cancellationToken).ConfigureAwait(false);
            var defaults = common.Options(parse);
            var app = AuthorityApplication.Build([.. parse.UnmatchedTokens], identity.Agent, builder =>
            {
                // The data folder's store unless the configuration names another; arguments still win.
                var configured = new Dictionary<string, string?>
                {
                    ["Authority:SqlitePath"] = defaults.SqlitePath,
                    ["Authority:Store"] = defaults.Store.ToString(),
                    ["Authority:PostgresConnectionString"] = defaults.PostgresConnectionString,
                };
                builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = configured });
            });
            await using (app.ConfigureAwait(false))
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
                var server = app.Services.GetRequiredService<AuthorityServer>();
                await Console.Out.WriteLineAsync($"authority {server.Identifier} listening on {server.EndPoint} (metrics on {server.MetricsEndPoint?.ToString() ?? "off"})").ConfigureAwait(false);
                await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command CreateTicket()
    {
        var common = Common.Create();
        var principal = new Option<string>("--principal") { Required = true, HelpName = "PRINCIPAL", Description = "Whom the enrolled agent acts for: user:ID, team:ID, system:ID." };
        var attributes = new Option<string[]>("--attr") { HelpName = "NAME=VALUE", Description = "An attribute its credential grants. Repeatable." };
        var ticketLifetime = new Option<string?>("--ticket-lifetime") { HelpName = "DURATION", Description = "How long the ticket may wait to be used (default: the authority's, 1h)." };
        var credentialLifetime = new Option<string?>("--credential-lifetime") { HelpName = "DURATION", Description = "How long each issued credential lives (default: the authority's, 1h)." };
        var depth = new Option<int>("--max-depth") { HelpName = "N", Description = "How many delegation hops the credential allows.", DefaultValueFactory = _ => 0 };
        var json = CliOutput.JsonOption();
        var command = new Command("create", "Create a one-time enrollment ticket. The ticket is a secret: hand it to the one agent that will enroll.") { principal, attributes, ticketLifetime, credentialLifetime, depth, json };
        common.AddTo(command);
        command.SetAction(common.Operate(async (parse, service, caller, cancellationToken) =>
        {
            var request = new TicketRequest(
                CliParsing.Principal(parse.GetValue(principal)!, "--principal"),
                CliParsing.Attributes(parse.GetValue(attributes) ?? [], "--attr"),
                parse.GetValue(ticketLifetime) is { } t ? CliParsing.Duration(t, "--ticket-lifetime") : TimeSpan.Zero,
                parse.GetValue(credentialLifetime) is { } c ? CliParsing.Duration(c, "--credential-lifetime") : TimeSpan.Zero,
                parse.GetValue(depth));
            var issued = await service.CreateTicketAsync(caller, request, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await CliOutput.WriteJsonAsync(new JsonObject { ["ticket"] = issued.Ticket.Reveal(), ["id"] = issued.Ticket.IdText, ["expiresAt"] = CliOutput.Time(issued.ExpiresAt) }).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync(issued.Ticket.Reveal()).ConfigureAwait(false);
                await Console.Error.WriteLineAsync($"ticket {issued.Ticket.IdText} for {request.Principal}, expires {CliOutput.Time(issued.ExpiresAt)}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command CreateRevoke()
    {
        var common = Common.Create();
        var credential = new Option<string?>("--credential") { HelpName = "ID", Description = "Revoke one credential and everything delegated below it (32 hex digits)." };
        var subject = new Option<string?>("--subject") { HelpName = "IDENTIFIER", Description = "Revoke every credential of an identity." };
        var principal = new Option<string?>("--principal") { HelpName = "PRINCIPAL", Description = "Revoke everything on behalf of a principal." };
        var reason = new Option<string>("--reason") { Required = true, HelpName = "TEXT", Description = "Why (kept in the audit log)." };
        var json = CliOutput.JsonOption();
        var command = new Command("revoke", "Revoke, sign a new revocation list and push it to every subscriber.") { credential, subject, principal, reason, json };
        common.AddTo(command);
        command.SetAction(common.Operate(async (parse, service, caller, cancellationToken) =>
        {
            var given = new[] { parse.GetValue(credential), parse.GetValue(subject), parse.GetValue(principal) }.Count(v => v is not null);
            if (given != 1)
            {
                throw CliException.Usage("Give exactly one of --credential, --subject, --principal.");
            }

            var entry = parse.GetValue(credential) is { } id ? CliParsing.CredentialId(id, "--credential")
                : parse.GetValue(subject) is { } s ? RevocationEntry.ForSubject(CliParsing.Identifier(s, "--subject"))
                : RevocationEntry.ForPrincipal(CliParsing.Principal(parse.GetValue(principal)!, "--principal"));
            var sequence = await service.RevokeAsync(caller, entry, parse.GetValue(reason)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await CliOutput.WriteJsonAsync(new JsonObject { ["revoked"] = entry.ToString(), ["sequence"] = sequence }).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync($"revoked {entry}: revocation list {sequence}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command CreateQuery()
    {
        var common = Common.Create();
        var actingFor = new Option<string?>("--acting-for") { HelpName = "PRINCIPAL", Description = "Every credential acting for a principal now." };
        var below = new Option<string?>("--below") { HelpName = "ID", Description = "Every credential delegated below a credential." };
        var above = new Option<string?>("--above") { HelpName = "ID", Description = "The chain above a credential, root first." };
        var json = CliOutput.JsonOption();
        var command = new Command("query", "Query the delegation registry.") { actingFor, below, above, json };
        common.AddTo(command);
        command.SetAction(common.Operate(async (parse, service, caller, cancellationToken) =>
        {
            var queries = new (RegistryQueryKind Kind, string? Value)[] { (RegistryQueryKind.ActingFor, parse.GetValue(actingFor)), (RegistryQueryKind.Below, parse.GetValue(below)), (RegistryQueryKind.Above, parse.GetValue(above)) }
                .Where(q => q.Value is not null).ToArray();
            if (queries.Length != 1)
            {
                throw CliException.Usage("Give exactly one of --acting-for, --below, --above.");
            }

            var entries = await service.QueryAsync(caller, new RegistryQuery(queries[0].Kind, queries[0].Value!), cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await CliOutput.WriteJsonAsync(new JsonObject { ["credentials"] = new JsonArray([.. entries.Select(EntryJson)]) }).ConfigureAwait(false);
                return 0;
            }

            foreach (var e in entries)
            {
                await Console.Out.WriteLineAsync($"{e.IdText}  parent {e.ParentIdText ?? "(root)"}  {e.Subject} for {e.Principal}  {CliOutput.AttributesText(e.Attributes)}  {CliOutput.Time(e.NotBefore)}..{CliOutput.Time(e.NotAfter)}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static JsonObject EntryJson(RegistryEntry e) => new()
    {
        ["id"] = e.IdText,
        ["parentId"] = e.ParentIdText,
        ["issuer"] = e.Issuer.ToString(),
        ["subject"] = e.Subject.ToString(),
        ["principal"] = e.Principal.ToString(),
        ["attributes"] = CliOutput.AttributesJson(e.Attributes),
        ["notBefore"] = CliOutput.Time(e.NotBefore),
        ["notAfter"] = CliOutput.Time(e.NotAfter),
    };

    private static Command CreateAuditVerify()
    {
        var common = Common.Create();
        var head = new Option<string?>("--head") { HelpName = "SEQ:HASH", Description = "The head printed by an earlier verify: also detects records removed from the end." };
        var file = new Option<string?>("--file") { HelpName = "FILE", Description = "Verify an exported JSON-lines file instead of the store." };
        var json = CliOutput.JsonOption();
        var command = new Command("verify", "Check the audit log's hash chain and signatures; exit 1 at the first edited, removed or reordered record.") { head, file, json };
        common.AddTo(command);
        command.SetAction(common.Operate(async (parse, service, caller, cancellationToken) =>
        {
            var expected = parse.GetValue(head) is { } h ? (AuditHead.TryParse(h, out var parsed) ? parsed : throw CliException.Usage("--head: expected SEQUENCE:HASH (64 hex digits).")) : null;
            AuditVerification result;
            if (parse.GetValue(file) is { } path)
            {
                await using var stream = File.OpenRead(path);
                result = await AuditChain.VerifyAsync(AuditJson.ReadAsync(stream, cancellationToken), service.Identity.Verified, expected, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                result = await service.VerifyAuditAsync(expected, cancellationToken).ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                await CliOutput.WriteJsonAsync(new JsonObject
                {
                    ["intact"] = result.IsIntact,
                    ["recordsChecked"] = result.RecordsChecked,
                    ["firstBadSequence"] = result.FirstBadSequence,
                    ["failure"] = result.Failure?.ToString(),
                    ["detail"] = result.Detail,
                    ["head"] = result.Head?.ToString(),
                }).ConfigureAwait(false);
            }
            else if (result.IsIntact)
            {
                await Console.Out.WriteLineAsync($"intact: {result.RecordsChecked} records; head {result.Head?.ToString() ?? "(empty)"}").ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync($"TAMPERED at record {result.FirstBadSequence}: {result.Failure}: {result.Detail}").ConfigureAwait(false);
            }

            return result.IsIntact ? 0 : ExitCodes.Failed;
        }));
        return command;
    }

    private static Command CreateAuditExport()
    {
        var common = Common.Create();
        var command = new Command("export", "Write the audit log as JSON lines on stdout, for a log pipeline.");
        common.AddTo(command);
        command.SetAction(common.Operate(async (parse, service, caller, cancellationToken) =>
        {
            await using var stdout = Console.OpenStandardOutput();
            for (long from = 1; ;)
            {
                var page = await service.ReadAuditAsync(from, AuditChain.DefaultPageSize, cancellationToken).ConfigureAwait(false);
                if (page.Count == 0)
                {
                    return 0;
                }

                foreach (var record in page)
                {
                    var line = System.Text.Encoding.UTF8.GetBytes(AuditJson.Format(record) + "\n");
                    await stdout.WriteAsync(line, cancellationToken).ConfigureAwait(false);
                }

                from = page[^1].Sequence + 1;
            }
        }));
        return command;
    }

    private static Command CreatePublish()
    {
        var common = Common.Create();
        var resource = new Option<string>("--resource") { Required = true, HelpName = "NAME", Description = "What the policy governs (an agent service, relay-admission, ...)." };
        var text = new Option<string>("--text") { Required = true, HelpName = "POLICY", Description = "The policy (the language in src/Protocol/Policy/README.md)." };
        var json = CliOutput.JsonOption();
        var command = new Command("publish", "Sign and publish a new version of a resource's policy; subscribers apply it.") { resource, text, json };
        common.AddTo(command);
        command.SetAction(common.Operate(async (parse, service, caller, cancellationToken) =>
        {
            var version = await service.PublishPolicyAsync(caller, parse.GetValue(resource)!, parse.GetValue(text)!, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await CliOutput.WriteJsonAsync(new JsonObject { ["resource"] = parse.GetValue(resource), ["version"] = version }).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync($"published {parse.GetValue(resource)} version {version}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }
}
