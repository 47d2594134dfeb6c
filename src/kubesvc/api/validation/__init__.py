"""Generic upstream validators shared by every kind.

``names`` holds the string checks of ``k8s.io/apimachinery/pkg/util/validation``
(each returns upstream's message strings), ``meta`` the ObjectMeta rules, and
``govalue`` renders bad values the way Go's ``%#v`` does inside field errors.
"""
