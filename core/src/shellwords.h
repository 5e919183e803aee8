#pragma once
// Shell words of a launch script, for the framework readers: comments
// dropped, backslash-newlines joined, single and double quotes honoured (no
// expansion); each line or ';' ends with a "\n" word. Internal to core.

#include <string>
#include <vector>

namespace partita::detail {

inline std::vector<std::string> shellWords(const std::string& text)
{
    std::vector<std::string> words;
    std::string cur;
    bool have = false;
    char quote = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char ch = text[i];
        if (quote) {
            if (ch == quote)
                quote = 0;
            else
                cur += ch;
            continue;
        }
        if (ch == '\\' && i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r')) {
            while (i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r'))
                ++i;
            continue;
        }
        if (ch == '#' && !have) {
            while (i < text.size() && text[i] != '\n')
                ++i;
            words.push_back("\n");
            continue;
        }
        if (ch == '\'' || ch == '"') {
            quote = ch;
            have = true;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == ';') {
            if (have)
                words.push_back(cur);
            cur.clear();
            have = false;
            if (ch == '\n' || ch == ';')
                words.push_back("\n");
            continue;
        }
        cur += ch;
        have = true;
    }
    if (have)
        words.push_back(cur);
    return words;
}

} // namespace partita::detail
