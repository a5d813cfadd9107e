using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;

namespace SecureChannels.Cli.Commands;

/// <summary>
/// <c>securechannels relay run</c>: hosts a relay. Its identity lives in the identity directory (created on first
/// run); the authorities it trusts come from <c>--trust</c>; every other setting comes from the usual .NET
/// configuration sources, including arguments such as <c>--Relay:Endpoint=0.0.0.0:7300</c>.
/// </summary>
internal static class RelayCommand
{
    // Without SECURECHANNELS_PASSPHRASE the relay still starts (the README's first command needs no setup), and its
    // key file is then protected by its 0600 permissions alone, as sshd's host keys are. It says so on start.
    private const string DevelopmentPassphrase = "securechannels-relay-development-only";

    public static Command Create() => new("relay", "Run a relay: a ciphertext-only forwarding service for agents (docs/protocol.md §9).")
    {
        CreateRun(),
    };

    private static Command CreateRun()
    {
        var directory = IdentityStore.DirectoryOption();
        var name = new Option<string>("--identity") { HelpName = "NAME", Description = "The relay's identity in the identity directory; created on first run.", DefaultValueFactory = _ => "relay" };
        var trust = new Option<string[]>("--trust") { HelpName = "FILE[:ATTR,...]", Description = "An authority whose credentials admit agents and grant names (attribute relay-name). Repeatable. Without any, every hop is refused." };
        var credentials = new Option<string[]>("--credential") { HelpName = "FILE", Description = "A .chain file the relay presents to agents. Repeatable." };
        var revocations = CliTrust.RevocationsOption();
        var fastKdf = IdentityStore.FastKdfOption();
        var command = new Command("run", "Run the relay until interrupted. Settings: appsettings.json, environment variables (Relay__Endpoint), or arguments (--Relay:Endpoint=127.0.0.1:7300); see README 'Deployment'.")
        {
            directory, name, trust, credentials, revocations, fastKdf,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var store = new IdentityStore(parse.GetValue(directory)!, parse.GetValue(fastKdf));
            var identityName = parse.GetValue(name)!;
            var passphrase = Environment.GetEnvironmentVariable(IdentityStore.PassphraseVariable) is { Length: > 0 } secret ? secret.AsMemory() : DevelopmentPassphrase.AsMemory();
            if (passphrase.Span.SequenceEqual(DevelopmentPassphrase))
            {
                await CliOutput.WarnAsync($"{IdentityStore.PassphraseVariable} is not set: the relay's key file is protected by its file permissions only.").ConfigureAwait(false);
            }

            await using var identity = File.Exists(store.HistoryPath(identityName))
                ? await store.OpenAsync(identityName, passphrase, cancellationToken).ConfigureAwait(false)
                : await store.CreateAsync(identityName, passphrase, cancellationToken).ConfigureAwait(false);
            var trustFiles = parse.GetValue(trust) ?? [];
            var (anchors, registry) = await CliTrust.LoadAsync(trustFiles, parse.GetValue(revocations) ?? []).ConfigureAwait(false);
            if (trustFiles.Length == 0)
            {
                await CliOutput.WarnAsync("no --trust authority: the relay will refuse every hop.").ConfigureAwait(false);
            }

            var chains = (parse.GetValue(credentials) ?? []).Select(CliFiles.ReadChain).ToList();
            var relayIdentity = new RelayIdentity(identity.Agent, anchors, registry, chains);
            var app = RelayApplication.Build([.. parse.UnmatchedTokens], relayIdentity);
            await using (app.ConfigureAwait(false))
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
                var server = app.Services.GetRequiredService<RelayServer>();
                await Console.Out.WriteLineAsync($"relay {server.Name} {server.Identifier} listening on {server.HopEndPoint} (metrics on {server.MetricsEndPoint?.ToString() ?? "off"})").ConfigureAwait(false);
                await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }
}
