using System.Globalization;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Cli.Commands;

/// <summary>Turns option text into library values; every failure is a usage error naming the option.</summary>
internal static class CliParsing
{
    /// <summary>
    /// A duration: one or more groups of a whole number and a unit, <c>s</c>, <c>m</c>, <c>h</c> or <c>d</c>
    /// (<c>90s</c>, <c>30m</c>, <c>1h</c>, <c>7d</c>, <c>1h30m</c>). Must be positive.
    /// </summary>
    public static TimeSpan Duration(string text, string option)
    {
        var error = CliException.Usage($"{option}: '{text}' is not a duration (a number with s, m, h or d, e.g. 90s, 30m, 1h, 7d, 1h30m).");
        if (string.IsNullOrEmpty(text))
        {
            throw error;
        }

        var total = TimeSpan.Zero;
        var start = 0;
        try
        {
            for (var i = 0; i < text.Length; i++)
            {
                if (char.IsAsciiDigit(text[i]))
                {
                    continue;
                }

                if (i == start || !long.TryParse(text.AsSpan(start, i - start), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                {
                    throw error;
                }

                total += text[i] switch
                {
                    's' => TimeSpan.FromSeconds(number),
                    'm' => TimeSpan.FromMinutes(number),
                    'h' => TimeSpan.FromHours(number),
                    'd' => TimeSpan.FromDays(number),
                    _ => throw error,
                };
                start = i + 1;
            }
        }
        catch (Exception e) when (e is OverflowException or ArgumentOutOfRangeException)
        {
            throw CliException.Usage($"{option}: '{text}' is too long a duration.");
        }

        if (start != text.Length || total <= TimeSpan.Zero)
        {
            throw error;
        }

        return total;
    }

    /// <summary>An ISO 8601 time; without an offset it is UTC.</summary>
    public static DateTimeOffset Instant(string text, string option) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            ? time
            : throw CliException.Usage($"{option}: '{text}' is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z).");

    /// <summary><paramref name="start"/> plus <paramref name="duration"/>, as a usage error when it leaves the calendar.</summary>
    public static DateTimeOffset After(DateTimeOffset start, TimeSpan duration, string option)
    {
        try
        {
            return start + duration;
        }
        catch (ArgumentOutOfRangeException)
        {
            throw CliException.Usage($"{option}: the end time is out of range.");
        }
    }

    /// <summary>An identifier (<c>I</c> + 64 hex digits).</summary>
    public static Identifier Identifier(string text, string option) =>
        Protocol.Identity.Identifier.TryParse(text, out var identifier)
            ? identifier
            : throw CliException.Usage($"{option}: '{text}' is not an identifier ('I' followed by 64 hex digits).");

    /// <summary>An identifier, or an identity history file (which must verify) whose identifier is meant.</summary>
    public static Identifier IdentifierOrHistory(string text, string option)
    {
        if (Protocol.Identity.Identifier.TryParse(text, out var identifier))
        {
            return identifier;
        }

        if (File.Exists(text))
        {
            return CliFiles.ReadVerifiedHistory(text).Identifier;
        }

        throw CliException.Usage($"{option}: '{text}' is neither an identifier ('I' followed by 64 hex digits) nor an identity history file.");
    }

    /// <summary><c>self</c>, <c>user:ID</c>, <c>team:ID</c> or <c>system:ID</c>.</summary>
    public static Principal Principal(string text, string option)
    {
        try
        {
            return Protocol.Credentials.Principal.Parse(text);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw CliException.Usage($"{option}: {e.Message}");
        }
    }

    /// <summary><c>name=value</c> pairs; a repeated name adds a value to its set.</summary>
    public static AttributeSet Attributes(IEnumerable<string> pairs, string option)
    {
        try
        {
            return AttributeSet.Parse(pairs);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw CliException.Usage($"{option}: {CliOutput.Message(e)}");
        }
    }

    /// <summary><c>name=value</c> pairs grouped by name, in order of first appearance.</summary>
    public static IReadOnlyDictionary<string, List<string>> Pairs(IEnumerable<string> pairs, string option)
    {
        var grouped = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw CliException.Usage($"{option}: '{pair}' is not name=value.");
            }

            var name = pair[..equals];
            if (!grouped.TryGetValue(name, out var values))
            {
                grouped[name] = values = [];
            }

            values.Add(pair[(equals + 1)..]);
        }

        return grouped;
    }

    /// <summary>A credential id: 32 hex digits.</summary>
    public static RevocationEntry CredentialId(string text, string option)
    {
        try
        {
            return RevocationEntry.ForCredential(Convert.FromHexString(text));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw CliException.Usage($"{option}: '{text}' is not a credential id ({2 * CredentialLimits.CredentialIdLength} hex digits).");
        }
    }

    /// <summary>
    /// A trust anchor: <c>AUTHORITY.identity</c>, or <c>AUTHORITY.identity:attr1,attr2</c> to trust the authority for
    /// those attributes only. A path that exists as given is never split.
    /// </summary>
    public static (string Path, string[]? Attributes) TrustSpec(string text)
    {
        var colon = text.LastIndexOf(':');
        if (File.Exists(text) || colon <= 0)
        {
            return (text, null);
        }

        var attributes = text[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries);
        if (attributes.FirstOrDefault(a => !AttributeSet.IsValidName(a)) is { } bad)
        {
            throw CliException.Usage($"--trust: '{bad}' in '{text}' is not an attribute name; write FILE or FILE:attr1,attr2.");
        }

        return (text[..colon], attributes);
    }
}
