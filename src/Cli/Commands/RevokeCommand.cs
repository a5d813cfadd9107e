using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Cli.Commands;

/// <summary><c>securechannels revoke</c>: sign a revocation list as an authority; <c>revoke show</c> prints one.</summary>
internal static class RevokeCommand
{
    public static Command Create()
    {
        var authority = IdentityStore.NameOption("--authority", "The revoking authority: an identity in --dir. A list only affects chains rooted at its authority.");
        var dir = IdentityStore.DirectoryOption();
        var credential = new Option<string[]>("--credential") { HelpName = "ID", Description = "Revoke one credential (and everything delegated from it) by id, 32 hex digits. Repeatable." };
        var subject = new Option<string[]>("--subject") { HelpName = "IDENTIFIER|FILE", Description = "Revoke every credential of a subject: an identifier or its identity history file. Repeatable." };
        var principal = new Option<string[]>("--principal") { HelpName = "PRINCIPAL", Description = "Revoke everything on behalf of a principal: user:ID, team:ID, system:ID or self. Repeatable." };
        var merge = new Option<string?>("--merge") { HelpName = "FILE", Description = "The authority's current .revocations file: its entries are kept and the new list's sequence is one higher." };
        var output = new Option<string>("--out") { Required = true, HelpName = "FILE", Description = "The .revocations file to write (replaced if it exists; may be the --merge file)." };
        var json = CliOutput.JsonOption();
        var command = new Command("revoke", "Sign a new revocation list as an authority: the entries given plus those of --merge, with sequence 1 (or the merged list's plus one). Verifiers keep the highest sequence per authority. Needs SECURECHANNELS_PASSPHRASE. " + ExitCodes.Describe())
        {
            authority, dir, credential, subject, principal, merge, output, json,
            CreateShow(),
        };
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var passphrase = IdentityStore.RequirePassphrase();
            var entries = new List<RevocationEntry>();
            entries.AddRange((parse.GetValue(credential) ?? []).Select(c => CliParsing.CredentialId(c, "--credential")));
            entries.AddRange((parse.GetValue(subject) ?? []).Select(s => RevocationEntry.ForSubject(CliParsing.IdentifierOrHistory(s, "--subject"))));
            entries.AddRange((parse.GetValue(principal) ?? []).Select(p => RevocationEntry.ForPrincipal(CliParsing.Principal(p, "--principal"))));
            var mergePath = parse.GetValue(merge);
            var previous = mergePath is null ? null : CliFiles.ReadRevocations(mergePath);

            var store = new IdentityStore(parse.GetValue(dir)!);
            await using var issuer = await store.OpenAsync(parse.GetValue(authority)!, passphrase, cancellationToken).ConfigureAwait(false);
            var sequence = 1UL;
            if (previous is not null)
            {
                try
                {
                    previous.Verify(issuer.Agent.Verified);
                }
                catch (CredentialException e)
                {
                    throw CliException.Usage($"{mergePath}: not a revocation list of {issuer.Agent.Identifier} ({e.Kind}): {e.Message}");
                }

                sequence = previous.List.Sequence == ulong.MaxValue
                    ? throw CliException.Usage($"{mergePath}: the sequence cannot go higher.")
                    : previous.List.Sequence + 1;
                entries.AddRange(previous.List.Entries);
            }

            var list = new RevocationList(issuer.Agent.Identifier, sequence, TimeProvider.System.GetUtcNow(), entries);
            var signed = await SignedRevocationList.SignAsync(list, issuer.Agent, cancellationToken).ConfigureAwait(false);
            var path = parse.GetValue(output)!;
            CliFiles.Write(path, signed.Encode());
            await WriteListAsync(list, parse.GetValue(json), ("out", Path.GetFullPath(path))).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateShow()
    {
        var file = new Argument<string>("file") { Description = "A .revocations file." };
        var json = CliOutput.JsonOption();
        var command = new Command("show", "Print a revocation list's issuer, sequence and entries. The signature is not checked here; verifiers check it against --trust. " + ExitCodes.Describe())
        {
            file, json,
        };
        command.SetAction(parse => CliOutput.RunAsync(async () =>
        {
            var signed = CliFiles.ReadRevocations(parse.GetValue(file)!);
            await WriteListAsync(signed.List, parse.GetValue(json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task WriteListAsync(RevocationList list, bool json, (string Name, string Value)? extra = null)
    {
        if (json)
        {
            var output = new JsonObject
            {
                ["issuer"] = list.Issuer.ToString(),
                ["sequence"] = list.Sequence,
                ["issuedAt"] = CliOutput.Time(list.IssuedAt),
                ["entries"] = new JsonArray([.. list.Entries.Select(e => (JsonNode?)new JsonObject
                {
                    ["kind"] = e.Kind.ToString().ToLowerInvariant(),
                    ["value"] = EntryValue(e),
                })]),
            };
            if (extra is { } added)
            {
                output[added.Name] = added.Value;
            }

            await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            return;
        }

        await CliOutput.WriteFieldsAsync(
        [
            ("issuer", list.Issuer.ToString()),
            ("sequence", list.Sequence.ToString(CultureInfo.InvariantCulture)),
            ("issued", CliOutput.Time(list.IssuedAt)),
            ("entries", list.Entries.Length.ToString(CultureInfo.InvariantCulture)),
            .. list.Entries.Select(e => ($"  {e.Kind.ToString().ToLowerInvariant()}", EntryValue(e))),
            .. extra is { } field ? new[] { ("written", field.Value) } : [],
        ]).ConfigureAwait(false);
    }

    private static string EntryValue(RevocationEntry entry) => entry.Kind switch
    {
        RevocationKind.Subject => Identifier.FromBytes(entry.Value).ToString(),
        RevocationKind.Principal => Encoding.UTF8.GetString(entry.Value),
        _ => CliOutput.Hex(entry.Value),
    };
}
