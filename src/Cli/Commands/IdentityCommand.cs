using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Cli.Commands;

/// <summary><c>securechannels identity</c>: create, show, rotate and export identities kept in a directory.</summary>
internal static class IdentityCommand
{
    public static Command Create() => new("identity", "Create, show, rotate and export agent identities. An identity NAME lives in --dir (default ./.securechannels): NAME.identity holds its signed history, keys/NAME-N.key the passphrase-encrypted key of change N. Commands that sign read the passphrase from SECURECHANNELS_PASSPHRASE.")
    {
        CreateCreate(),
        CreateShow(),
        CreateRotate(),
        CreateExport(),
    };

    private static Command CreateCreate()
    {
        var name = IdentityStore.NameOption("--name", "The new identity's name ([a-z0-9][a-z0-9._-]*, up to 60 characters).");
        var dir = IdentityStore.DirectoryOption();
        var fastKdf = IdentityStore.FastKdfOption();
        var json = CliOutput.JsonOption();
        var command = new Command("create", "Generate a key and create an identity with it; prints the identifier. Needs SECURECHANNELS_PASSPHRASE. " + ExitCodes.Describe())
        {
            name, dir, fastKdf, json,
        };
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var passphrase = IdentityStore.RequirePassphrase();
            var store = new IdentityStore(parse.GetValue(dir)!, parse.GetValue(fastKdf));
            var identityName = parse.GetValue(name)!;
            await using var created = await store.CreateAsync(identityName, passphrase, cancellationToken).ConfigureAwait(false);
            var verified = created.Agent.Verified;
            if (parse.GetValue(json))
            {
                var output = CliOutput.IdentityJson(verified);
                output["name"] = identityName;
                output["file"] = store.HistoryPath(identityName);
                await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            }
            else
            {
                await CliOutput.WriteFieldsAsync(
                [
                    ("identifier", verified.Identifier.ToString()),
                    ("public key", CliOutput.Hex(verified.PublicKey)),
                    ("changes", "1"),
                    ("file", store.HistoryPath(identityName)),
                ]).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateShow()
    {
        var name = new Option<string?>("--name") { HelpName = "NAME", Description = "An identity in --dir." };
        var file = new Option<string?>("--file") { HelpName = "FILE", Description = "An identity history file (e.g. one written by 'identity export')." };
        var dir = IdentityStore.DirectoryOption();
        var json = CliOutput.JsonOption();
        var command = new Command("show", "Verify an identity's history and print its identifier, current public key and changes. Give --name or --file. " + ExitCodes.Describe("the history does not verify"))
        {
            name, file, dir, json,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetResult(name) is null) == (result.GetResult(file) is null))
            {
                result.AddError("Give exactly one of --name and --file.");
            }
        });
        command.SetAction(parse => CliOutput.RunAsync(async () =>
        {
            string path;
            IdentityHistory history;
            if (parse.GetValue(name) is { } identityName)
            {
                var store = new IdentityStore(parse.GetValue(dir)!);
                path = store.HistoryPath(identityName);
                history = store.ReadHistory(identityName);
            }
            else
            {
                path = parse.GetValue(file)!;
                history = CliFiles.ReadHistory(path);
            }

            VerifiedIdentity verified;
            try
            {
                verified = history.Verify();
            }
            catch (IdentityException e)
            {
                throw new CliException(ExitCodes.Failed, $"{path}: the identity history does not verify ({e.Kind}): {e.Message}");
            }

            var changes = verified.History.Changes.Select(c => c.Change).ToList();
            if (parse.GetValue(json))
            {
                var output = CliOutput.IdentityJson(verified);
                output["createdAt"] = CliOutput.Time(changes[0].CreatedAt);
                output["updatedAt"] = CliOutput.Time(changes[^1].CreatedAt);
                output["history"] = new JsonArray([.. changes.Select((c, i) => (JsonNode?)new JsonObject
                {
                    ["change"] = i + 1,
                    ["publicKey"] = CliOutput.Hex(c.PublicKey),
                    ["createdAt"] = CliOutput.Time(c.CreatedAt),
                    ["changeHash"] = CliOutput.Hex(c.ChangeHash),
                })]);
                await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            }
            else
            {
                await CliOutput.WriteFieldsAsync(
                [
                    ("identifier", verified.Identifier.ToString()),
                    ("public key", CliOutput.Hex(verified.PublicKey)),
                    ("changes", changes.Count.ToString(CultureInfo.InvariantCulture)),
                    ("created", CliOutput.Time(changes[0].CreatedAt)),
                    ("updated", CliOutput.Time(changes[^1].CreatedAt)),
                    .. changes.Select((c, i) => ($"  change {i + 1}", $"{CliOutput.Time(c.CreatedAt)}  key {CliOutput.Hex(c.PublicKey)}")),
                ]).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateRotate()
    {
        var name = IdentityStore.NameOption("--name", "The identity in --dir to rotate.");
        var dir = IdentityStore.DirectoryOption();
        var fastKdf = IdentityStore.FastKdfOption();
        var json = CliOutput.JsonOption();
        var command = new Command("rotate", "Generate a new key and rotate the identity to it (signed by the old and the new key); the identifier stays the same. Credentials signed with older keys stay valid. Re-export the identity for those who trust it. Needs SECURECHANNELS_PASSPHRASE. " + ExitCodes.Describe())
        {
            name, dir, fastKdf, json,
        };
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var passphrase = IdentityStore.RequirePassphrase();
            var store = new IdentityStore(parse.GetValue(dir)!, parse.GetValue(fastKdf));
            var identityName = parse.GetValue(name)!;
            await using var rotated = await store.RotateAsync(identityName, passphrase, cancellationToken).ConfigureAwait(false);
            var verified = rotated.Agent.Verified;
            var previous = verified.History.Changes[^2].Change.PublicKey;
            if (parse.GetValue(json))
            {
                var output = CliOutput.IdentityJson(verified);
                output["previousPublicKey"] = CliOutput.Hex(previous);
                output["file"] = store.HistoryPath(identityName);
                await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            }
            else
            {
                await CliOutput.WriteFieldsAsync(
                [
                    ("identifier", verified.Identifier.ToString()),
                    ("public key", CliOutput.Hex(verified.PublicKey)),
                    ("previous key", CliOutput.Hex(previous)),
                    ("changes", verified.History.Changes.Length.ToString(CultureInfo.InvariantCulture)),
                    ("file", store.HistoryPath(identityName)),
                ]).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateExport()
    {
        var name = IdentityStore.NameOption("--name", "The identity in --dir to export.");
        var dir = IdentityStore.DirectoryOption();
        var output = new Option<string>("--out") { Required = true, HelpName = "FILE", Description = "The file to write (replaced if it exists)." };
        var json = CliOutput.JsonOption();
        var command = new Command("export", "Write the identity's verified history to a file, for others to use as a trust anchor (--trust), a subject (--subject) or to check signatures. Contains no secret. " + ExitCodes.Describe())
        {
            name, dir, output, json,
        };
        command.SetAction(parse => CliOutput.RunAsync(async () =>
        {
            var store = new IdentityStore(parse.GetValue(dir)!);
            var identityName = parse.GetValue(name)!;
            var verified = store.Verify(identityName, store.ReadHistory(identityName));
            var path = parse.GetValue(output)!;
            CliFiles.Write(path, verified.History.Encoded);
            if (parse.GetValue(json))
            {
                var result = CliOutput.IdentityJson(verified);
                result["out"] = Path.GetFullPath(path);
                await CliOutput.WriteJsonAsync(result).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync($"exported {verified.Identifier} ({verified.History.Changes.Length} change(s)) to {path}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }
}
