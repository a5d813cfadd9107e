namespace SecureChannels.Protocol.Policy;

/// <summary>The name grammar: <c>[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_-]*)*</c>, shared by the lexer and <see cref="PolicyInput"/>.</summary>
internal static class PolicyName
{
    public static bool IsValid(ReadOnlySpan<char> name)
    {
        var segmentStart = true;
        var firstSegment = true;
        foreach (var c in name)
        {
            if (segmentStart)
            {
                if (!(char.IsAsciiLetterLower(c) || c == '_'))
                {
                    return false;
                }

                segmentStart = false;
            }
            else if (c == '.')
            {
                segmentStart = true;
                firstSegment = false;
            }
            else if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_' || (c == '-' && !firstSegment)))
            {
                return false;
            }
        }

        // Empty, or ending in a dot.
        return !segmentStart;
    }

    /// <summary>Reserved words, which are never names.</summary>
    public static bool IsKeyword(ReadOnlySpan<char> word) => word is "true" or "false" or "in" or "has";
}
