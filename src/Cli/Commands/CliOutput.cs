using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Cli.Commands;

/// <summary>The exit codes of the identity, credential, revoke and policy commands.</summary>
internal static class ExitCodes
{
    /// <summary>Done; VERIFIED; ALLOW.</summary>
    public const int Ok = 0;

    /// <summary>A verification or decision failed: REJECTED, DENY, a refused delegation, a history that does not verify.</summary>
    public const int Failed = 1;

    /// <summary>Bad usage or bad input: options, missing or unreadable files, files that do not decode, a missing passphrase, key store errors.</summary>
    public const int Usage = 2;

    /// <summary>The sentence each command's description ends with; <paramref name="failed"/> says what exit code 1 means, when the command uses it.</summary>
    public static string Describe(string? failed = null) =>
        "Exit codes: 0 success" + (failed is null ? string.Empty : $"; 1 {failed}") + "; 2 usage error or bad input (missing or corrupt file, missing passphrase, key store error).";
}

/// <summary>An error the CLI reports as <c>error: message</c> on stderr with its exit code.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);
}

/// <summary>Printing: text for people, one JSON object (camelCase) for <c>--json</c>, errors on stderr.</summary>
internal static class CliOutput
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,

        // Output goes to a terminal or a program, never into HTML: keep '+', '<' and non-ASCII readable.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The <c>--json</c> option.</summary>
    public static Option<bool> JsonOption() => new("--json") { Description = "Print one JSON object (camelCase) on stdout instead of text." };

    /// <summary>
    /// Runs a command body, turning the errors a user can cause into <c>error: message</c> on stderr and an exit code.
    /// Anything else is a bug and propagates.
    /// </summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (CliException e)
        {
            return await ErrorAsync(e.ExitCode, e.Message).ConfigureAwait(false);
        }
        catch (KeyStoreException e)
        {
            return await ErrorAsync(ExitCodes.Usage, $"key store: {e.Kind}: {e.Message}").ConfigureAwait(false);
        }
        catch (SecureChannels.Protocol.Authority.AuthorityException e)
        {
            // What the operator typed wrong is a usage error; what the authority refused is a failure.
            var usage = e.Code is SecureChannels.Protocol.Authority.AuthorityErrorCode.Malformed or SecureChannels.Protocol.Authority.AuthorityErrorCode.OutOfRange;
            return await ErrorAsync(usage ? ExitCodes.Usage : ExitCodes.Failed, $"authority: {e.Code}: {e.Message}").ConfigureAwait(false);
        }
        catch (SecureChannels.Authority.Audit.AuditFormatException e)
        {
            return await ErrorAsync(ExitCodes.Failed, $"audit: {e.Message}").ConfigureAwait(false);
        }
        catch (PolicySyntaxException e)
        {
            return await ErrorAsync(ExitCodes.Usage, $"policy: {e.Code}: {e.Message}").ConfigureAwait(false);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return await ErrorAsync(ExitCodes.Usage, Message(e)).ConfigureAwait(false);
        }
    }

    /// <summary>An exception's message without the " (Parameter 'x')" that <see cref="ArgumentException"/> appends, which means nothing on a command line.</summary>
    public static string Message(Exception e) =>
        e is ArgumentException { ParamName: { } name } && e.Message.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal)
            ? e.Message[..^$" (Parameter '{name}')".Length]
            : e.Message;

    public static async Task<int> ErrorAsync(int exitCode, string message)
    {
        await Console.Error.WriteLineAsync($"error: {message}").ConfigureAwait(false);
        return exitCode;
    }

    public static Task WarnAsync(string message) => Console.Error.WriteLineAsync($"warning: {message}");

    public static Task WriteJsonAsync(JsonObject value) => Console.Out.WriteLineAsync(value.ToJsonString(JsonOptions));

    /// <summary>Writes <c>label  value</c> lines with the labels aligned.</summary>
    public static async Task WriteFieldsAsync(IEnumerable<(string Label, string Value)> fields, string indent = "")
    {
        var list = fields.ToList();
        var width = list.Count == 0 ? 0 : list.Max(f => f.Label.Length);
        foreach (var (label, value) in list)
        {
            await Console.Out.WriteLineAsync($"{indent}{label.PadRight(width)}  {value}").ConfigureAwait(false);
        }
    }

    /// <summary>A time as <c>yyyy-MM-ddTHH:mm:ssZ</c> (protocol times are whole seconds, UTC).</summary>
    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>Attributes as text: <c>env=prod|staging, role=billing</c>, or <c>(none)</c>.</summary>
    public static string AttributesText(AttributeSet attributes) => attributes.Count == 0 ? "(none)" : attributes.ToString();

    /// <summary>Attributes as a JSON object of name to array of values.</summary>
    public static JsonObject AttributesJson(AttributeSet attributes)
    {
        var json = new JsonObject();
        foreach (var (name, values) in attributes.Entries)
        {
            json[name] = new JsonArray([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);
        }

        return json;
    }

    /// <summary>The fields of a verified chain: who acts, for whom, under which authority, through which hops, with what.</summary>
    public static JsonObject VerifiedJson(VerifiedCredential verified)
    {
        ArgumentNullException.ThrowIfNull(verified);
        return new JsonObject
        {
            ["subject"] = verified.Subject.ToString(),
            ["principal"] = verified.Principal.ToString(),
            ["authority"] = verified.Authority.ToString(),
            ["hops"] = verified.ChainLength,
            ["chain"] = new JsonArray([.. verified.Hops.Select(h => (JsonNode?)new JsonObject
            {
                ["issuer"] = h.Issuer.ToString(),
                ["subject"] = h.Subject.ToString(),
                ["credentialId"] = h.CredentialId,
            })]),
            ["attributes"] = AttributesJson(verified.Attributes),
            ["notBefore"] = Time(verified.NotBefore),
            ["notAfter"] = Time(verified.NotAfter),
        };
    }

    public static async Task WriteVerifiedTextAsync(VerifiedCredential verified)
    {
        ArgumentNullException.ThrowIfNull(verified);
        await WriteFieldsAsync(
        [
            ("subject", verified.Subject.ToString()),
            ("principal", verified.Principal.ToString()),
            ("authority", verified.Authority.ToString()),
            ("hops", verified.ChainLength.ToString(CultureInfo.InvariantCulture)),
            .. verified.Hops.Select((h, i) => ($"  {i + 1}.", $"{h.Issuer} -> {h.Subject} (credential {h.CredentialId})")),
            ("attributes", AttributesText(verified.Attributes)),
            ("valid", $"{Time(verified.NotBefore)} to {Time(verified.NotAfter)}"),
        ]).ConfigureAwait(false);
    }

    /// <summary>A rejection as <c>Kind</c> or <c>Kind (Widening)</c>.</summary>
    public static string RejectionKind(CredentialException rejection) =>
        rejection.Widening == WideningKind.None ? rejection.Kind.ToString() : $"{rejection.Kind} ({rejection.Widening})";

    public static JsonObject RejectionJson(CredentialException rejection) => new()
    {
        ["kind"] = rejection.Kind.ToString(),
        ["widening"] = rejection.Widening == WideningKind.None ? null : rejection.Widening.ToString(),
        ["message"] = rejection.Message,
    };

    /// <summary>The identity fields every identity command prints.</summary>
    public static JsonObject IdentityJson(VerifiedIdentity identity) => new()
    {
        ["identifier"] = identity.Identifier.ToString(),
        ["publicKey"] = Hex(identity.PublicKey),
        ["changes"] = identity.History.Changes.Length,
    };
}
