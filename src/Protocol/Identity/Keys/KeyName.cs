namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>The key name rule shared by every store: <c>[a-z0-9][a-z0-9._-]{0,63}</c>, ASCII only.</summary>
internal static class KeyName
{
    /// <summary>The longest valid name.</summary>
    public const int MaxLength = 64;

    /// <summary>The rule, for messages.</summary>
    public const string Pattern = "[a-z0-9][a-z0-9._-]{0,63}";

    /// <summary>Whether <paramref name="name"/> follows the rule.</summary>
    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength || !IsLowerAlphanumeric(name[0]))
        {
            return false;
        }

        foreach (var c in name.AsSpan(1))
        {
            if (!IsLowerAlphanumeric(c) && c is not ('.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Throws <see cref="KeyStoreErrorKind.InvalidName"/> unless <paramref name="name"/> is valid.</summary>
    /// <remarks>The message does not echo the rejected name: a mistaken argument could be anything, including a secret.</remarks>
    public static void Validate(string? name)
    {
        if (!IsValid(name))
        {
            throw new KeyStoreException(KeyStoreErrorKind.InvalidName, $"A key name must match {Pattern}.");
        }
    }

    private static bool IsLowerAlphanumeric(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c);
}
