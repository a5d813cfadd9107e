using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Cli.Commands;

/// <summary><c>securechannels credential</c>: issue, delegate, show and verify credential chains kept in files.</summary>
internal static class CredentialCommand
{
    public static Command Create() => new("credential", "Issue, delegate, show and verify credential chains (.chain files).")
    {
        CreateIssue(),
        CreateDelegate(),
        CreateShow(),
        CreateVerify(),
    };

    private static Option<string> SubjectOption() => new("--subject")
    {
        Required = true,
        HelpName = "IDENTIFIER|FILE",
        Description = "Whom the credential is about: an identifier (I + 64 hex digits) or its identity history file.",
    };

    private static Option<string[]> AttributeOption() => new("--attr")
    {
        HelpName = "NAME=VALUE",
        Description = "A granted attribute, name=value; repeat a name for several values. Repeatable. None given: no attributes.",
    };

    private static Option<string?> NotBeforeOption() => new("--not-before")
    {
        HelpName = "TIME",
        Description = "Start of validity, ISO 8601 (UTC unless an offset is given). Default: now.",
    };

    private static Option<int> MaxDepthOption(string description)
    {
        var option = new Option<int>("--max-depth") { HelpName = "N", Description = description, DefaultValueFactory = _ => 0 };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 0 or >= CredentialLimits.MaxChainLength)
            {
                result.AddError($"--max-depth must be from 0 to {CredentialLimits.MaxChainLength - 1}.");
            }
        });
        return option;
    }

    private static Option<string> OutOption() => new("--out")
    {
        Required = true,
        HelpName = "FILE",
        Description = "The .chain file to write (replaced if it exists).",
    };

    private static Command CreateIssue()
    {
        var authority = IdentityStore.NameOption("--authority", "The issuing authority: an identity in --dir.");
        var dir = IdentityStore.DirectoryOption();
        var subject = SubjectOption();
        var principal = new Option<string>("--principal")
        {
            HelpName = "PRINCIPAL",
            Description = "On whose behalf the subject acts: self, user:ID, team:ID or system:ID.",
            DefaultValueFactory = _ => "self",
        };
        var attributes = AttributeOption();
        var validFor = new Option<string>("--valid-for") { Required = true, HelpName = "DURATION", Description = "How long it is valid: e.g. 90s, 30m, 1h, 7d, 1h30m." };
        var notBefore = NotBeforeOption();
        var maxDepth = MaxDepthOption("How many further hops the subject may delegate (0 to 7). Default 0: none.");
        var output = OutOption();
        var json = CliOutput.JsonOption();
        var command = new Command("issue", "Issue a root credential from an authority to a subject and write it as a one-link chain. Needs SECURECHANNELS_PASSPHRASE. " + ExitCodes.Describe())
        {
            authority, dir, subject, principal, attributes, validFor, notBefore, maxDepth, output, json,
        };
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var passphrase = IdentityStore.RequirePassphrase();
            var subjectId = CliParsing.IdentifierOrHistory(parse.GetValue(subject)!, "--subject");
            var principalValue = CliParsing.Principal(parse.GetValue(principal)!, "--principal");
            var attributeSet = CliParsing.Attributes(parse.GetValue(attributes) ?? [], "--attr");
            var duration = CliParsing.Duration(parse.GetValue(validFor)!, "--valid-for");
            var start = parse.GetValue(notBefore) is { } text ? CliParsing.Instant(text, "--not-before") : TimeProvider.System.GetUtcNow();
            var end = CliParsing.After(start, duration, "--valid-for");
            var store = new IdentityStore(parse.GetValue(dir)!);
            await using var issuer = await store.OpenAsync(parse.GetValue(authority)!, passphrase, cancellationToken).ConfigureAwait(false);
            var chain = await CredentialIssuer.IssueAsync(issuer.Agent, subjectId, principalValue, attributeSet, start, end, parse.GetValue(maxDepth), cancellationToken).ConfigureAwait(false);
            var path = parse.GetValue(output)!;
            CliFiles.Write(path, chain.Encoded);
            await WriteIssuedAsync(chain, path, parse.GetValue(json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateDelegate()
    {
        var holder = IdentityStore.NameOption("--holder", "The delegating holder: an identity in --dir, the subject of the held chain.");
        var dir = IdentityStore.DirectoryOption();
        var held = new Option<string>("--chain") { Required = true, HelpName = "FILE", Description = "The held .chain file (its last link's subject is the holder)." };
        var subject = SubjectOption();
        var attributes = AttributeOption();
        var validFor = new Option<string?>("--valid-for") { HelpName = "DURATION", Description = "How long it is valid from its start, e.g. 30m. Default: until the held credential ends." };
        var notBefore = NotBeforeOption();
        var maxDepth = MaxDepthOption("How many further hops the subject may delegate; less than the held credential allows. Default 0: none.");
        var output = OutOption();
        var json = CliOutput.JsonOption();
        var command = new Command("delegate", "Delegate part of a held credential to another subject, for the same principal, and write the longer chain. Only narrowing is allowed: a subset of the attributes, a validity within the held one, fewer further hops. Needs SECURECHANNELS_PASSPHRASE. " + ExitCodes.Describe("the delegation is refused (it would widen the held credential, or the holder does not hold the chain)"))
        {
            holder, dir, held, subject, attributes, validFor, notBefore, maxDepth, output, json,
        };
        command.SetAction((parse, cancellationToken) => CliOutput.RunAsync(async () =>
        {
            var passphrase = IdentityStore.RequirePassphrase();
            var heldChain = CliFiles.ReadChain(parse.GetValue(held)!);
            var subjectId = CliParsing.IdentifierOrHistory(parse.GetValue(subject)!, "--subject");
            var attributeSet = CliParsing.Attributes(parse.GetValue(attributes) ?? [], "--attr");
            var start = parse.GetValue(notBefore) is { } text ? CliParsing.Instant(text, "--not-before") : TimeProvider.System.GetUtcNow();
            var end = parse.GetValue(validFor) is { } duration
                ? CliParsing.After(start, CliParsing.Duration(duration, "--valid-for"), "--valid-for")
                : heldChain.Leaf.Credential.NotAfter;
            var store = new IdentityStore(parse.GetValue(dir)!);
            await using var issuer = await store.OpenAsync(parse.GetValue(holder)!, passphrase, cancellationToken).ConfigureAwait(false);
            CredentialChain chain;
            try
            {
                chain = await CredentialIssuer.DelegateAsync(issuer.Agent, heldChain, subjectId, attributeSet, start, end, parse.GetValue(maxDepth), cancellationToken).ConfigureAwait(false);
            }
            catch (CredentialException e)
            {
                throw new CliException(ExitCodes.Failed, $"refused: {CliOutput.RejectionKind(e)}: {e.Message}");
            }

            var path = parse.GetValue(output)!;
            CliFiles.Write(path, chain.Encoded);
            await WriteIssuedAsync(chain, path, parse.GetValue(json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateShow()
    {
        var file = new Argument<string>("file") { Description = "A .chain file." };
        var json = CliOutput.JsonOption();
        var command = new Command("show", "Print each link of a chain WITHOUT verifying anything (use 'credential verify' for that). " + ExitCodes.Describe())
        {
            file, json,
        };
        command.SetAction(parse => CliOutput.RunAsync(async () =>
        {
            var path = parse.GetValue(file)!;
            var chain = CliFiles.ReadChain(path);
            if (parse.GetValue(json))
            {
                await CliOutput.WriteJsonAsync(new JsonObject
                {
                    ["verified"] = false,
                    ["links"] = new JsonArray([.. chain.Credentials.Select((c, i) => (JsonNode?)LinkJson(c, i))]),
                    ["issuerHistories"] = new JsonArray([.. chain.IssuerHistories.Select(h => (JsonNode?)new JsonObject
                    {
                        ["identifier"] = HistoryIdentifier(h).ToString(),
                        ["changes"] = h.Changes.Length,
                    })]),
                }).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await Console.Out.WriteLineAsync($"{path}: {chain.Credentials.Length} link(s), NOT verified").ConfigureAwait(false);
            for (var i = 0; i < chain.Credentials.Length; i++)
            {
                var credential = chain.Credentials[i].Credential;
                await Console.Out.WriteLineAsync($"link {i}: {(credential.Parent is null ? "root" : "delegated")} credential {credential.IdText}").ConfigureAwait(false);
                await CliOutput.WriteFieldsAsync(
                [
                    ("issuer", credential.Issuer.ToString()),
                    .. i == 0 ? [] : new[] { ("issuer history", $"{HistoryIdentifier(chain.IssuerHistories[i - 1])} ({chain.IssuerHistories[i - 1].Changes.Length} change(s))") },
                    ("subject", credential.Subject.ToString()),
                    ("principal", credential.Principal.ToString()),
                    ("attributes", CliOutput.AttributesText(credential.Attributes)),
                    ("valid", $"{CliOutput.Time(credential.NotBefore)} to {CliOutput.Time(credential.NotAfter)}"),
                    ("max depth", credential.MaxDelegationDepth.ToString(CultureInfo.InvariantCulture)),
                    .. credential.Parent is { } parent ? new[] { ("parent", CliOutput.Hex(parent.Id)) } : [],
                ], "  ").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateVerify()
    {
        var file = new Argument<string>("file") { Description = "The .chain file to verify." };
        var trust = CliTrust.TrustOption();
        var revocations = CliTrust.RevocationsOption();
        var presenter = new Option<string?>("--presenter") { HelpName = "IDENTIFIER", Description = "The identifier that presents the chain; it must be the last link's subject." };
        var json = CliOutput.JsonOption();
        var command = new Command("verify", "Verify a chain against trusted authorities, their revocation lists and the current time; prints VERIFIED with what it grants, or REJECTED with the reason. " + ExitCodes.Describe("REJECTED"))
        {
            file, trust, revocations, presenter, json,
        };
        command.SetAction(parse => CliOutput.RunAsync(async () =>
        {
            var chain = CliFiles.ReadChain(parse.GetValue(file)!);
            var presentedBy = parse.GetValue(presenter) is { } text ? CliParsing.Identifier(text, "--presenter") : (Identifier?)null;
            var verifier = await CliTrust.CreateVerifierAsync(parse.GetValue(trust) ?? [], parse.GetValue(revocations) ?? []).ConfigureAwait(false);
            VerifiedCredential verified;
            try
            {
                verified = verifier.Verify(chain, presentedBy);
            }
            catch (CredentialException e)
            {
                if (parse.GetValue(json))
                {
                    var rejected = CliOutput.RejectionJson(e);
                    rejected.Insert(0, "verified", false);
                    await CliOutput.WriteJsonAsync(rejected).ConfigureAwait(false);
                }
                else
                {
                    await Console.Out.WriteLineAsync($"REJECTED: {CliOutput.RejectionKind(e)}: {e.Message}").ConfigureAwait(false);
                }

                return ExitCodes.Failed;
            }

            if (parse.GetValue(json))
            {
                var output = CliOutput.VerifiedJson(verified);
                output.Insert(0, "verified", true);
                await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync("VERIFIED").ConfigureAwait(false);
                await CliOutput.WriteVerifiedTextAsync(verified).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task WriteIssuedAsync(CredentialChain chain, string path, bool json)
    {
        var credential = chain.Leaf.Credential;
        if (json)
        {
            var output = LinkJson(chain.Leaf, chain.Credentials.Length - 1);
            output.Remove("index");
            output["links"] = chain.Credentials.Length;
            output["out"] = Path.GetFullPath(path);
            await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            return;
        }

        await CliOutput.WriteFieldsAsync(
        [
            ("credential", credential.IdText),
            ("issuer", credential.Issuer.ToString()),
            ("subject", credential.Subject.ToString()),
            ("principal", credential.Principal.ToString()),
            ("attributes", CliOutput.AttributesText(credential.Attributes)),
            ("valid", $"{CliOutput.Time(credential.NotBefore)} to {CliOutput.Time(credential.NotAfter)}"),
            ("max depth", credential.MaxDelegationDepth.ToString(CultureInfo.InvariantCulture)),
            ("written", $"{path} ({chain.Credentials.Length} link(s))"),
        ]).ConfigureAwait(false);
    }

    private static JsonObject LinkJson(SignedCredential signed, int index)
    {
        var credential = signed.Credential;
        return new JsonObject
        {
            ["index"] = index,
            ["credentialId"] = credential.IdText,
            ["issuer"] = credential.Issuer.ToString(),
            ["subject"] = credential.Subject.ToString(),
            ["principal"] = credential.Principal.ToString(),
            ["attributes"] = CliOutput.AttributesJson(credential.Attributes),
            ["notBefore"] = CliOutput.Time(credential.NotBefore),
            ["notAfter"] = CliOutput.Time(credential.NotAfter),
            ["maxDelegationDepth"] = credential.MaxDelegationDepth,
            ["parentId"] = credential.Parent is { } parent ? CliOutput.Hex(parent.Id) : null,
            ["issuerChangeHash"] = CliOutput.Hex(signed.IssuerChangeHash),
        };
    }

    // The identifier a history claims (the hash of its first change), for display only: nothing is verified.
    private static Identifier HistoryIdentifier(IdentityHistory history) => Identifier.FromFirstChange(history.Changes[0].Change.Encoded);
}
