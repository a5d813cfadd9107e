using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Cli.Commands;

/// <summary><c>securechannels policy check</c>: the access decision a channel would make for a peer presenting a chain.</summary>
internal static class PolicyCommand
{
    // Far beyond AccessPolicy.MaxTextLength (16 Ki UTF-16 units) in any encoding; the parser reports longer texts itself.
    private const int MaxPolicyFileBytes = 4 * AccessPolicy.MaxTextLength;

    public static Command Create() => new("policy", "Evaluate access policies (see src/Protocol/Policy/README.md for the language).")
    {
        CreateCheck(),
    };

    private static Command CreateCheck()
    {
        var policy = new Option<string?>("--policy") { HelpName = "TEXT", Description = "The policy text, e.g. 'subject.role == \"billing\"'." };
        var policyFile = new Option<string?>("--policy-file") { HelpName = "FILE", Description = "A file holding the policy text (UTF-8)." };
        var chain = new Option<string>("--chain") { Required = true, HelpName = "FILE", Description = "The peer's .chain file." };
        var trust = CliTrust.TrustOption();
        var revocations = CliTrust.RevocationsOption();
        var context = new Option<string[]>("--context") { HelpName = "NAME=VALUE", Description = "An application value, name=value, seen by the policy as context.NAME (a string; a repeated name makes a set of strings). Repeatable." };
        var json = CliOutput.JsonOption();
        var command = new Command("check", "Verify the chain, then evaluate the policy over peer.identifier, peer.principal, peer.chain_length, subject.ATTRIBUTE (a string, or a set when it has several values) and context.NAME; prints ALLOW or DENY. A chain that does not verify is DENY. Policy syntax errors exit 2 with their line and column. " + ExitCodes.Describe("DENY"))
        {
            policy, policyFile, chain, trust, revocations, context, json,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetResult(policy) is null) == (result.GetResult(policyFile) is null))
            {
                result.AddError("Give exactly one of --policy and --policy-file.");
            }
        });
        command.SetAction(parse => CliOutput.RunAsync(async () =>
        {
            var text = parse.GetValue(policy) ?? ReadPolicyFile(parse.GetValue(policyFile)!);
            if (!AccessPolicy.TryParse(text, out var compiled, out var syntaxError))
            {
                throw CliException.Usage(SyntaxErrorText(text, syntaxError));
            }

            var contextPairs = CliParsing.Pairs(parse.GetValue(context) ?? [], "--context");
            var contextValues = contextPairs.ToDictionary(
                p => p.Key,
                p => p.Value.Count == 1 ? PolicyValue.FromString(p.Value[0]) : PolicyValue.FromSet(p.Value),
                StringComparer.Ordinal);
            CheckContextNames(contextValues);
            var presented = CliFiles.ReadChain(parse.GetValue(chain)!);
            var verifier = await CliTrust.CreateVerifierAsync(parse.GetValue(trust) ?? [], parse.GetValue(revocations) ?? []).ConfigureAwait(false);
            var isJson = parse.GetValue(json);

            VerifiedCredential verified;
            try
            {
                verified = verifier.Verify(presented);
            }
            catch (CredentialException e)
            {
                if (isJson)
                {
                    var rejected = CliOutput.RejectionJson(e);
                    rejected.Insert(0, "decision", "deny");
                    rejected.Insert(1, "verified", false);
                    await CliOutput.WriteJsonAsync(rejected).ConfigureAwait(false);
                }
                else
                {
                    await Console.Out.WriteLineAsync($"DENY: the chain does not verify: {CliOutput.RejectionKind(e)}: {e.Message}").ConfigureAwait(false);
                }

                return ExitCodes.Failed;
            }

            var input = PeerPolicyInput.Create(verified.Subject, verified.Principal, verified.ChainLength, verified.Attributes, contextValues);
            var decision = compiled.Evaluate(input);
            if (isJson)
            {
                var output = CliOutput.VerifiedJson(verified);
                output.Insert(0, "decision", decision == PolicyDecision.Allow ? "allow" : "deny");
                output.Insert(1, "verified", true);
                output["policy"] = compiled.Text;
                output["context"] = new JsonObject(contextPairs.Select(c => KeyValuePair.Create(c.Key, ContextJson(c.Value))));
                await CliOutput.WriteJsonAsync(output).ConfigureAwait(false);
            }
            else
            {
                await Console.Out.WriteLineAsync(decision == PolicyDecision.Allow ? "ALLOW" : "DENY: the policy is not definitely true for this peer").ConfigureAwait(false);
                await CliOutput.WriteVerifiedTextAsync(verified).ConfigureAwait(false);
                await CliOutput.WriteFieldsAsync(contextValues.Select(c => ($"context.{c.Key}", c.Value.ToString()))).ConfigureAwait(false);
            }

            return decision == PolicyDecision.Allow ? ExitCodes.Ok : ExitCodes.Failed;
        }));
        return command;
    }

    private static string ReadPolicyFile(string path)
    {
        var bytes = CliFiles.Read(path, MaxPolicyFileBytes, "policy");
        try
        {
            return new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes).TrimStart('\uFEFF');
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw CliException.Usage($"{path}: the policy is not UTF-8 text.");
        }
    }

    // A usage error before anything is verified, rather than a deny when the input is built: the library's own name rule.
    private static void CheckContextNames(Dictionary<string, PolicyValue> context)
    {
        var probe = new PolicyInput();
        foreach (var (name, value) in context)
        {
            try
            {
                probe.Set("context." + name, value);
            }
            catch (ArgumentException e)
            {
                throw CliException.Usage($"--context: {CliOutput.Message(e)}");
            }
        }
    }

    /// <summary>The parser's message, then the offending line with a caret under the column.</summary>
    private static string SyntaxErrorText(string text, PolicySyntaxException error)
    {
        // Lines as the parser counts them: LF, CR LF and a lone CR each end one.
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Split('\n');
        var message = $"policy: {error.Code}: {error.Message}";
        if (error.Line > lines.Length)
        {
            return message;
        }

        var line = lines[error.Line - 1];
        var caret = new string(' ', Math.Min(error.Column - 1, line.Length)) + "^";
        return string.Create(CultureInfo.InvariantCulture, $"{message}{Environment.NewLine}  {line}{Environment.NewLine}  {caret}");
    }

    // As the policy sees it: one value is a string; several are a set (sorted ordinally, without duplicates).
    private static JsonNode? ContextJson(List<string> values) => values.Count == 1
        ? JsonValue.Create(values[0])
        : new JsonArray([.. values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(v => (JsonNode?)JsonValue.Create(v))]);
}
