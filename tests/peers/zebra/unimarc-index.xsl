<?xml version="1.0" encoding="UTF-8"?>
<!-- UNIMARC / CNMARC (as MARCXML) to Zebra's indexing format, for the balis test peer.
     1=30, 1=53, 1=1017 and 1=1035 reach the same indexes as 1=31, 1=16 and 1=1016
     through the aliases of the generated bib1.att (see ../servers.py).
     Only lower-case subfield codes feed the specific indexes: CNMARC's upper-case pinyin
     subfields ($A, $F, ...) are found through 1=1016 "any" only.

     Bib-1 use attribute       index name            UNIMARC source
     1=1016 any (1017, 1035)   Any                   every subfield of every data field but $0-$9
     1=4    title              Title                 200 aehi, 500 a, 510-518 a, 532 a, 540/541 a
     1=5    series             Title-series          225 a, 410 a
     1=1003 author             Author                700-702, 710-712, 720-722 abcdf (not $4)
     1=1004, 1=1005            Author-name-personal (70X, 72X), Author-name-corporate (71X)
     1=21   subject            Subject-heading       600-610 abcdfjtxyz
     1=7    isbn               ISBN                  010 a (first word), also as ISBN-13/-10
     1=8    issn               ISSN                  011 a
     1=1018 publisher          Publisher             210/214 c
     1=59   place              Place-publication     210/214 a
     1=31   year (and 1=30)    Date-of-publication   100 a/09-12, else digits of 210/214 d
     1=16   call no. (1=53)    LC-call-number        905 "d e" and s (CALIS, BNU), 090 "a b", u
     1=20   classification     Local-classification  686/690 (CLC)/692/675/676 a
     1=54   language           Code-language         101 a
     1=12   record id          Local-number          001
-->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:m="http://www.loc.gov/MARC21/slim"
                xmlns:z="http://indexdata.com/zebra-2.0"
                exclude-result-prefixes="m">
  <xsl:include href="common.xsl"/>
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>

  <xsl:template match="text()"/>

  <xsl:template match="/">
    <xsl:apply-templates select="m:record | m:collection/m:record"/>
  </xsl:template>

  <xsl:template match="m:record">
    <z:record type="update">
      <xsl:call-template name="local-number"/>
      <xsl:variable name="y100" select="substring(m:datafield[@tag = '100']/m:subfield[@code = 'a'], 10, 4)"/>
      <xsl:variable name="ok100">
        <xsl:call-template name="is-year"><xsl:with-param name="value" select="$y100"/></xsl:call-template>
      </xsl:variable>
      <xsl:variable name="y210">
        <xsl:call-template name="digits4">
          <xsl:with-param name="value" select="(m:datafield[@tag = '210' or @tag = '214']/m:subfield[@code = 'd'])[1]"/>
        </xsl:call-template>
      </xsl:variable>
      <xsl:choose>
        <xsl:when test="$ok100 = 'yes'">
          <xsl:call-template name="year"><xsl:with-param name="value" select="$y100"/></xsl:call-template>
        </xsl:when>
        <xsl:when test="$y210 != ''">
          <xsl:call-template name="year"><xsl:with-param name="value" select="$y210"/></xsl:call-template>
        </xsl:when>
      </xsl:choose>
      <xsl:apply-templates select="m:datafield"/>
    </z:record>
  </xsl:template>

  <xsl:template match="m:datafield">
    <xsl:variable name="tag" select="string(@tag)"/>
    <xsl:call-template name="any"/>
    <xsl:choose>
      <xsl:when test="$tag = '200'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:w'"/>
          <xsl:with-param name="codes" select="'aehi'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:p Title:s'"/>
          <xsl:with-param name="codes" select="'aehi'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '500' or ($tag &gt;= 510 and $tag &lt;= 518) or $tag = '532' or $tag = '540' or $tag = '541'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title:w Title:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '225' or $tag = '410'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Title-series:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '700' or $tag = '701' or $tag = '702' or $tag = '720' or $tag = '721' or $tag = '722'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:w Author-name-personal:w'"/>
          <xsl:with-param name="codes" select="'abcdf'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '710' or $tag = '711' or $tag = '712'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:w Author-name-corporate:w'"/>
          <xsl:with-param name="codes" select="'abcdf'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Author:p'"/>
          <xsl:with-param name="codes" select="'ab'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag &gt;= 600 and $tag &lt;= 610">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Subject-heading:w'"/>
          <xsl:with-param name="codes" select="'abcdfjtxyz'"/>
        </xsl:call-template>
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Subject-heading:p'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '010'">
        <xsl:call-template name="isbn">
          <xsl:with-param name="value" select="m:subfield[@code = 'a']"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '011'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'ISSN:w Identifier-standard:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '210' or $tag = '214'">
        <xsl:for-each select="m:subfield[@code = 'c']">
          <xsl:call-template name="emit">
            <xsl:with-param name="names" select="'Publisher:w Publisher:p'"/>
            <xsl:with-param name="value" select="."/>
          </xsl:call-template>
        </xsl:for-each>
        <xsl:for-each select="m:subfield[@code = 'a']">
          <xsl:call-template name="emit">
            <xsl:with-param name="names" select="'Place-publication:w'"/>
            <xsl:with-param name="value" select="."/>
          </xsl:call-template>
        </xsl:for-each>
      </xsl:when>
      <xsl:when test="$tag = '905' or $tag = '090'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'LC-call-number:w LC-call-number:p'"/>
          <xsl:with-param name="codes">
            <xsl:choose>
              <xsl:when test="$tag = '905'">de</xsl:when>
              <xsl:otherwise>ab</xsl:otherwise>
            </xsl:choose>
          </xsl:with-param>
        </xsl:call-template>
        <xsl:for-each select="m:subfield[@code = 's' or @code = 'u']">
          <xsl:call-template name="emit">
            <xsl:with-param name="names" select="'LC-call-number:w LC-call-number:p'"/>
            <xsl:with-param name="value" select="."/>
          </xsl:call-template>
        </xsl:for-each>
      </xsl:when>
      <xsl:when test="$tag = '686' or $tag = '690' or $tag = '692' or $tag = '675' or $tag = '676'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Local-classification:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$tag = '101'">
        <xsl:call-template name="subfields">
          <xsl:with-param name="names" select="'Code-language:w'"/>
          <xsl:with-param name="codes" select="'a'"/>
        </xsl:call-template>
      </xsl:when>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
